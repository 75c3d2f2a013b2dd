"""Release keys for tests: a fresh Ed25519 key per call, signed stores, trusted-keys files.

Keys are made in memory and written only under a test's tmp_path, never into the checkout.
"""

from __future__ import annotations

from pathlib import Path

import orjson
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from warden_algos.delivery.config import ReleaseConfig
from warden_algos.delivery.signing import KeySigner, trust_entry
from warden_algos.delivery.store import ReleaseStore

from .conftest import BUCKET


def new_key() -> tuple[bytes, KeySigner]:
    """(the private key as PEM, a signer holding it)."""
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return pem, KeySigner(pem, "a test key")


def signed_store(
    endpoint: str, prefix: str, signer: KeySigner | None, statement_days: float | None = None
) -> ReleaseStore:
    config = ReleaseConfig(bucket=BUCKET, prefix=prefix, endpoint_url=endpoint)
    return ReleaseStore(
        config.client(), BUCKET, prefix, signer=signer, statement_days=statement_days
    )


def trusted_keys_file(
    path: Path, *signers: KeySigner, not_after: dict[int, str] | None = None
) -> Path:
    """A trusted-keys file pinning ``signers``; ``not_after`` maps a signer's index to the end
    of its trust."""
    ends = not_after or {}
    entries = [
        trust_entry(signer.public_key, ends.get(index)) for index, signer in enumerate(signers)
    ]
    path.write_bytes(orjson.dumps({"keys": entries}, option=orjson.OPT_INDENT_2))
    return path
