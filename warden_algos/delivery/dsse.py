"""DSSE v1 envelopes (https://github.com/secure-systems-lab/dsse): the one signed-document shape
of a release bucket (see ``signing.py`` for what is signed and why).

An envelope carries its payload as base64 and any number of signatures, each over
``PAE(payloadType, payload)``, so a verifier never re-serialises JSON to check a signature: the
signed bytes are the bytes it received. Field names are the spec's (``payloadType``), so DSSE
tools read these files too.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import Annotated

import orjson
from pydantic import BaseModel, ConfigDict, Field

from .errors import SignatureError

#: Bounds on what a node reads before checking a signature: a statement is a few hundred bytes.
MAX_PAYLOAD_BASE64 = 16_384
MAX_SIGNATURES = 8

KeyId = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
Base64Signature = Annotated[str, Field(pattern=r"^[A-Za-z0-9+/]{86}==$")]  # 64 bytes


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE's pre-authentication encoding: what is actually signed. Lengths are ASCII decimal
    byte counts: ``b"DSSEv1 " + len(T) + b" " + T + b" " + len(P) + b" " + P``."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def keyid_of(public_key: bytes) -> str:
    """A key's id: the hex sha256 of its raw 32 bytes."""
    return hashlib.sha256(public_key).hexdigest()


class Signature(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    keyid: KeyId
    sig: Base64Signature


class Envelope(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    payloadType: str = Field(max_length=200)
    payload: str = Field(max_length=MAX_PAYLOAD_BASE64, pattern=r"^[A-Za-z0-9+/]*={0,2}$")
    signatures: list[Signature] = Field(min_length=1, max_length=MAX_SIGNATURES)

    def payload_bytes(self) -> bytes:
        try:
            return base64.b64decode(self.payload, validate=True)
        except binascii.Error as error:
            raise SignatureError(f"the envelope's payload is not base64 ({error})") from None

    def dumps(self) -> bytes:
        return orjson.dumps(self.model_dump(), option=orjson.OPT_INDENT_2)
