"""``warden-algos keys generate|public``: make a release key pair, and print a public key's entry
for the trusted-keys file nodes pin.

The private key is written once, with mode 0600, never over an existing file and never inside a
git work tree: keys belong in the CI secret store or a KMS, not in a repository. Imported only by
the ``keys`` command (it needs ``cryptography``).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

import orjson


def add_keys_parser(commands: Any) -> None:
    keys = commands.add_parser(
        "keys",
        help="make a release signing key; print the entry nodes pin for it",
        description="Release keys are Ed25519. The private key goes to the CI secret store "
        "(WARDEN_SIGNING_KEY) or stays in a KMS (WARDEN_SIGNING_COMMAND); nodes pin the public "
        "entry in their trusted-keys file.",
    )
    actions = keys.add_subparsers(dest="keys_action", required=True)
    generate = actions.add_parser("generate", help="a new key pair: private PEM to --out")
    generate.add_argument("--out", type=Path, required=True, help="private key file (0600)")
    public = actions.add_parser(
        "public", help="the trusted-keys entry of a key (a PEM file, or the configured signer)"
    )
    public.add_argument("--key-file", type=Path, help="default: the WARDEN_SIGNING_* key")
    for parser in (generate, public):
        parser.add_argument("--not-after", help="end of trust for this key (a rotation), ...Z")
        parser.add_argument("--comment", default="", help="who or what the key is for")


def run_keys(args: argparse.Namespace) -> int:
    from .errors import SignatureError

    try:
        public = _generate(args.out) if args.keys_action == "generate" else _public(args.key_file)
        entry = _entry(public, args.not_after, args.comment)
    except SignatureError as error:
        print(f"warden-algos keys {args.keys_action}: {error}", file=sys.stderr)
        return 1
    sys.stdout.buffer.write(orjson.dumps(entry, option=orjson.OPT_INDENT_2) + b"\n")
    return 0


def _entry(public: bytes, not_after: str | None, comment: str) -> dict[str, Any]:
    from pydantic import ValidationError

    from .errors import SignatureError
    from .signing import trust_entry

    try:
        return trust_entry(public, not_after, comment)
    except ValidationError as error:
        first = error.errors()[0]
        raise SignatureError(f"--{first['loc'][0]}: {first['msg']}".replace("_", "-")) from None


def _generate(out: Path) -> bytes:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from .errors import SignatureError

    checkout = _git_work_tree(out.resolve().parent)
    if checkout is not None:
        raise SignatureError(
            f"{out} is inside the git work tree {checkout}: a release key never goes into a "
            "repository; write it elsewhere and store it in the CI secret store or a KMS"
        )
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    try:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except OSError as error:
        raise SignatureError(f"cannot create {out}: {error.strerror}") from None
    with os.fdopen(fd, "wb") as file:
        file.write(pem)
    print(f"warden-algos keys generate: private key written to {out} (0600)", file=sys.stderr)
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _public(key_file: Path | None) -> bytes:
    from .errors import SignatureError
    from .signing import KeySigner, signer_from_environment

    if key_file is not None:
        try:
            return KeySigner(key_file.read_bytes(), str(key_file)).public_key
        except OSError as error:
            raise SignatureError(f"cannot read {key_file}: {error.strerror}") from None
    signer = signer_from_environment()
    if signer is None:
        raise SignatureError("give --key-file, or configure WARDEN_SIGNING_KEY and the like")
    return signer.public_key


def _git_work_tree(folder: Path) -> Path | None:
    for candidate in (folder, *folder.parents):
        if (candidate / ".git").exists():
            return candidate
    return None
