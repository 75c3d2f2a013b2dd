"""Serve-mode framing: a 4-byte big-endian unsigned length, then that many bytes.

Reads go straight to the file descriptor (no read-ahead buffer), so that whatever follows the frame
being handled stays in the pipe: a process that replaces itself with a fresh copy (after an
algorithm ignored its deadline) resumes reading at the next frame boundary.
"""

from __future__ import annotations

import io
import struct

HEADER = struct.Struct(">I")
MAX_FRAME_BYTES = 2**32 - 1


class TruncatedFrame(Exception):
    """Input ended inside a frame (header or body)."""


class FrameTooLarge(Exception):
    """A frame announced more bytes than this process accepts; its body has been skipped."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"frame of {size} bytes exceeds the limit of {limit} bytes")
        self.size = size
        self.limit = limit


def encode_frame(body: bytes) -> bytes:
    if len(body) > MAX_FRAME_BYTES:
        raise ValueError(f"frame body of {len(body)} bytes does not fit a 4-byte length")
    return HEADER.pack(len(body)) + body


class FrameReader:
    def __init__(self, fd: int, max_frame_bytes: int) -> None:
        self._raw = io.FileIO(fd, "rb", closefd=False)
        self.max_frame_bytes = max_frame_bytes

    def _read_exact(self, size: int) -> bytearray | None:
        """``size`` bytes; None at end of input before the first byte, TruncatedFrame after it."""
        buffer = bytearray(size)
        view = memoryview(buffer)
        filled = 0
        while filled < size:
            count = self._raw.readinto(view[filled:])
            if not count:
                if filled == 0:
                    return None
                raise TruncatedFrame(f"input ended after {filled} of {size} bytes")
            filled += count
        return buffer

    def _skip(self, size: int) -> None:
        remaining = size
        chunk = bytearray(min(size, 1 << 20))
        while remaining:
            count = self._raw.readinto(memoryview(chunk)[: min(remaining, len(chunk))])
            if not count:
                raise TruncatedFrame(f"input ended inside an oversized frame of {size} bytes")
            remaining -= count

    def read_frame(self) -> bytearray | None:
        """The next frame body, or None at a clean end of input (between frames)."""
        header = self._read_exact(HEADER.size)
        if header is None:
            return None
        (size,) = HEADER.unpack(header)
        if size > self.max_frame_bytes:
            self._skip(size)
            raise FrameTooLarge(size, self.max_frame_bytes)
        if size == 0:
            return bytearray()
        body = self._read_exact(size)
        if body is None:
            raise TruncatedFrame(f"input ended before a frame body of {size} bytes")
        return body


class FrameWriter:
    def __init__(self, fd: int) -> None:
        self._raw = io.FileIO(fd, "wb", closefd=False)

    def write_frame(self, body: bytes) -> None:
        if len(body) > MAX_FRAME_BYTES:
            raise ValueError(f"frame body of {len(body)} bytes does not fit a 4-byte length")
        if len(body) < 65536:
            self.write_all(HEADER.pack(len(body)) + body)
        else:  # two writes rather than copying a large body behind its header
            self.write_all(HEADER.pack(len(body)))
            self.write_all(body)

    def write_all(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = self._raw.write(view)
            if written is None:  # non-blocking pipe with no room: retry
                continue
            view = view[written:]
