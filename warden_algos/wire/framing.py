"""Serve-mode framing: a 4-byte big-endian unsigned length, then that many bytes.

Reads go straight to the file descriptor (no read-ahead buffer), so that whatever follows the frame
being handled stays in the pipe: a process that replaces itself with a fresh copy (after an
algorithm ignored its deadline) resumes reading at the next frame boundary.

A frame whose header announces more than the limit is refused as soon as its header is read
(``FrameTooLarge``), before any of its body: the caller answers at once, and the next
``read_frame`` first skips that body as it arrives (through a small buffer, never holding it),
then reads the frame after it. A client that announced more bytes than it sends cannot get back in
step: the skip swallows what it sends next, and the stream ends at end of input (``read_frame``
returns None; the refusal was already answered).

With ``poll_s`` the reader waits for the next frame by polling its descriptor for up to that long
before blocking (``serve --poll-us``). A process blocked in ``read`` lets its CPU idle, and waking
an idle CPU costs a host-dependent delay per request (measured on a 2-vCPU VM: a pipe round trip
of 57 us with both ends blocking, 17 us with the server polling); a host that streams one point
per call pays it on every call. The price is one CPU kept busy for ``poll_s`` after each answer.
"""

from __future__ import annotations

import io
import select
import struct
import time

HEADER = struct.Struct(">I")
MAX_FRAME_BYTES = 2**32 - 1


class TruncatedFrame(Exception):
    """Input ended inside a frame (header or body)."""


class FrameTooLarge(Exception):
    """A frame announced more bytes than this process accepts. Raised as soon as its header is
    read; the reader skips its body at the start of the next ``read_frame``."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"frame of {size} bytes exceeds the limit of {limit} bytes")
        self.size = size
        self.limit = limit


def encode_frame(body: bytes) -> bytes:
    if len(body) > MAX_FRAME_BYTES:
        raise ValueError(f"frame body of {len(body)} bytes does not fit a 4-byte length")
    return HEADER.pack(len(body)) + body


class FrameReader:
    def __init__(self, fd: int, max_frame_bytes: int, poll_s: float = 0.0) -> None:
        self._raw = io.FileIO(fd, "rb", closefd=False)
        self.max_frame_bytes = max_frame_bytes
        #: Seconds to poll for the next frame before blocking (0: block at once).
        self.poll_s = poll_s
        self._poller: select.poll | None = None
        if poll_s > 0:
            self._poller = select.poll()
            self._poller.register(fd, select.POLLIN | select.POLLHUP | select.POLLERR)
        #: Body bytes of a refused frame not read yet; skipped by the next ``read_frame``.
        self.pending_skip = 0
        #: Set when input ended inside a refused frame's body: how many bytes never came.
        self.ended_inside_refused_frame: int | None = None

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

    def _skip_pending(self) -> bool:
        """Read and drop the rest of a refused frame as it arrives; False if input ended first."""
        chunk = memoryview(bytearray(min(self.pending_skip, 1 << 16)))
        while self.pending_skip:
            count = self._raw.readinto(chunk[: min(self.pending_skip, len(chunk))])
            if not count:
                self.ended_inside_refused_frame = self.pending_skip
                self.pending_skip = 0
                return False
            self.pending_skip -= count
        return True

    def read_frame(self) -> bytearray | None:
        """The next frame body, or None at the end of input: between frames, or inside the body
        of a refused frame (already answered; see ``ended_inside_refused_frame``).

        Raises ``FrameTooLarge`` right after an oversized header, without reading its body.
        """
        if self.pending_skip and not self._skip_pending():
            return None
        if self._poller is not None:
            self._poll()
        header = self._read_exact(HEADER.size)
        if header is None:
            return None
        (size,) = HEADER.unpack(header)
        if size > self.max_frame_bytes:
            self.pending_skip = size
            raise FrameTooLarge(size, self.max_frame_bytes)
        if size == 0:
            return bytearray()
        body = self._read_exact(size)
        if body is None:
            raise TruncatedFrame(f"input ended before a frame body of {size} bytes")
        return body

    def _poll(self) -> None:
        """Return as soon as input is readable (or ended), or after ``poll_s`` without it."""
        assert self._poller is not None
        poll, deadline = self._poller.poll, time.perf_counter() + self.poll_s
        while not poll(0) and time.perf_counter() < deadline:
            pass


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
