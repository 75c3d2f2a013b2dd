"""Where releases live: bucket, prefix and endpoint, from a config file, the environment or flags.

Credentials are deliberately not a setting: boto3's standard chain finds them (environment, shared
files, an instance or OIDC role), so nothing in the repository or a config file can leak them. A
config file that tries to carry them is refused rather than silently ignored.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

DEFAULT_FILE = Path("warden-release.toml")
FORBIDDEN = (
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
    "secret",
    "password",
)
ENVIRONMENT = {
    "bucket": "WARDEN_RELEASE_BUCKET",
    "prefix": "WARDEN_RELEASE_PREFIX",
    "endpoint_url": "WARDEN_RELEASE_ENDPOINT_URL",
    "region": "WARDEN_RELEASE_REGION",
}


class ConfigError(ValueError):
    """The release configuration is missing or unusable."""


class ReleaseConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    bucket: str = Field(min_length=3, max_length=63)
    prefix: str = Field(default="warden-algos", pattern=r"^[A-Za-z0-9._/-]*[A-Za-z0-9._-]$")
    endpoint_url: str | None = Field(
        default=None, description="An S3-compatible endpoint; None means AWS itself."
    )
    region: str | None = None

    @classmethod
    def load(cls, path: Path | None = None, **flags: str | None) -> ReleaseConfig:
        """File (``path``, else ``$WARDEN_RELEASE_CONFIG``, else ./warden-release.toml if it
        exists), then the environment, then command-line ``flags``: later sources win."""
        values: dict[str, Any] = {}
        file = path or (
            Path(os.environ["WARDEN_RELEASE_CONFIG"])
            if os.environ.get("WARDEN_RELEASE_CONFIG")
            else None
        )
        if file is None and DEFAULT_FILE.is_file():
            file = DEFAULT_FILE
        if file is not None:
            values.update(_read_file(file))
        for key, variable in ENVIRONMENT.items():
            if os.environ.get(variable):
                values[key] = os.environ[variable]
        values.update({key: value for key, value in flags.items() if value})
        if "bucket" not in values:
            raise ConfigError(
                "no release bucket: set WARDEN_RELEASE_BUCKET, pass --bucket, or write "
                f"[release] bucket = ... in {DEFAULT_FILE}"
            )
        try:
            return cls(**values)
        except ValidationError as error:
            raise ConfigError(f"invalid release configuration: {error}") from None

    def client(self) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            config=Config(
                retries={"max_attempts": 5, "mode": "standard"},
                signature_version="s3v4",
                s3={"addressing_style": "path"} if self.endpoint_url else None,
            ),
        )


def _read_file(path: Path) -> dict[str, Any]:
    try:
        table = tomllib.loads(path.read_text()).get("release", {})
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise ConfigError(f"cannot read {path}: {error}") from None
    leaked = [key for key in table if any(word in key.lower() for word in FORBIDDEN)]
    if leaked:
        raise ConfigError(
            f"{path} sets {', '.join(leaked)}: credentials never go in a config file; boto3's "
            "standard chain (environment, ~/.aws, instance or OIDC role) provides them"
        )
    return dict(table)
