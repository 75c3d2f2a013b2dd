"""Where a batch run reads and writes: a local folder or an ``s3://bucket/prefix``, both behind
the model store's object interface (``modelstore.objects``): whole objects, each written at once
(a file renamed into place; an S3 PUT), so a reader never sees half of one."""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

from warden_algos.modelstore.objects import ObjectStore


class Place(NamedTuple):
    objects: ObjectStore
    prefix: str  # "" or ending in "/"

    def key(self, relative: str) -> str:
        return f"{self.prefix}{relative}"


def is_s3(url: str) -> bool:
    return url.startswith("s3://")


def split_s3(url: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` as ("bucket", "some/prefix")."""
    from warden_algos.modelstore.records import ModelStoreError

    bucket, _, prefix = url[len("s3://") :].partition("/")
    if not bucket:
        raise ModelStoreError(f"{url}: an s3:// address names a bucket (s3://BUCKET/PREFIX)")
    return bucket, prefix


def s3_client(bucket: str, endpoint_url: str | None) -> Any:
    """A client for ``bucket`` as the model store and releases make one: boto3's credential
    chain, the endpoint from ``endpoint_url`` or WARDEN_RELEASE_ENDPOINT_URL."""
    from warden_algos.delivery.config import ReleaseConfig

    return ReleaseConfig.load(None, bucket=bucket, endpoint_url=endpoint_url).client()


def open_place(url: str, endpoint_url: str | None) -> Place:
    if not is_s3(url):
        from warden_algos.modelstore.local import FolderObjects

        return Place(FolderObjects(Path(url)), "")
    from warden_algos.modelstore.s3 import S3Objects

    bucket, prefix = split_s3(url)
    stripped = prefix.strip("/")
    client = s3_client(bucket, endpoint_url)
    return Place(S3Objects(client, bucket), f"{stripped}/" if stripped else "")
