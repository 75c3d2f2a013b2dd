"""The table of wire formats.

A codec turns bytes into a :class:`Request` and a :class:`Response` into bytes (and the reverse, for
hosts and tests). The dispatcher asks this table for a codec by the name given on the command line
and never names a format itself; a new format is one module and one line here. Codec modules are
imported only when chosen, so a JSON run never pays for Thrift.
"""

from __future__ import annotations

import importlib
from typing import Protocol

from .envelope import Request, Response


class Codec(Protocol):
    name: str

    def decode_request(self, data: bytes | bytearray) -> Request:
        """Raises ``InvalidInput`` (with ``request_id`` set when it could be read)."""
        ...

    def encode_response(self, response: Response) -> bytes: ...

    def encode_request(self, request: Request) -> bytes: ...

    def decode_response(self, data: bytes | bytearray) -> Response: ...


#: format name -> "module:class" of its codec, resolved lazily.
CODECS: dict[str, str] = {
    "json": "warden_algos.wire.json_codec:JsonCodec",
    "thrift-binary": "warden_algos.wire.thrift_codec:ThriftBinaryCodec",
    "thrift-compact": "warden_algos.wire.thrift_codec:ThriftCompactCodec",
}


def codec_names() -> list[str]:
    return list(CODECS)


def get_codec(name: str) -> Codec:
    try:
        target = CODECS[name]
    except KeyError:
        raise ValueError(f"unknown format {name!r}; known: {', '.join(CODECS)}") from None
    module_name, _, class_name = target.partition(":")
    codec_class = getattr(importlib.import_module(module_name), class_name)
    codec: Codec = codec_class()
    return codec
