"""Wire formats: the envelope objects, the codec table, and serve-mode framing.

Never writes anywhere itself: codecs turn objects into bytes and back, the CLI owns the streams.
"""

from .codec import CODECS, Codec, codec_names, get_codec
from .envelope import DetectPayload, ErrorInfo, Payload, RCAPayload, Request, Response
from .framing import FrameReader, FrameTooLarge, FrameWriter, TruncatedFrame, encode_frame

__all__ = [
    "CODECS",
    "Codec",
    "DetectPayload",
    "ErrorInfo",
    "FrameReader",
    "FrameTooLarge",
    "FrameWriter",
    "Payload",
    "RCAPayload",
    "Request",
    "Response",
    "TruncatedFrame",
    "codec_names",
    "encode_frame",
    "get_codec",
]
