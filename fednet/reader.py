"""Read one connection's messages, joining the parts of multi-part binary frames."""

from __future__ import annotations

from fednet.buffers import BufferPool
from fednet.exceptions import ProtocolError
from fednet.params import DEFAULT_LIMITS, Limits, frame_length
from fednet.protocol import Message, parse


class FrameAssembler:
    """Join the parts of one binary frame (sans-I/O).

    Feed each binary message; :meth:`feed` returns the whole frame once its
    last part arrived, else None. A single-part frame is returned as is.
    Nothing is allocated before :meth:`feed`: a caller that must first decide
    whether it accepts a frame of that size reads :meth:`declared_length`.

    Args:
        limits: bounds checked on the first part.
        pool: where to get buffers from (default: a new buffer per frame).
    """

    def __init__(
        self, limits: Limits = DEFAULT_LIMITS, pool: BufferPool | None = None
    ) -> None:
        self.limits = limits
        self.pool = pool
        self._buffer: bytearray | None = None
        self._filled = 0
        self._total = 0
        self._declared: tuple[object, int] | None = None

    @property
    def in_progress(self) -> bool:
        """Return whether a frame has started but not completed."""
        return self._buffer is not None

    def reset(self) -> None:
        """Forget a partly received frame."""
        self._buffer, self._filled, self._declared = None, 0, None

    def declared_length(self, data: bytes | bytearray | memoryview) -> int | None:
        """Return the length of the frame ``data`` would start, allocating nothing.

        Returns None when a frame is in progress (``data`` continues it). The
        header is parsed once: feeding the same ``data`` next reuses it.

        Raises:
            ProtocolError: on a malformed first part or a frame over the limits.
        """
        if self._buffer is not None:
            return None
        total = frame_length(data, self.limits)
        self._declared = (data, total)
        return total

    def feed(
        self, data: bytes | bytearray | memoryview
    ) -> bytes | bytearray | memoryview | None:
        """Take one part; return the completed frame or None.

        Raises:
            ProtocolError: on a malformed first part or a frame that overflows.
        """
        if self._buffer is None:
            declared, self._declared = self._declared, None
            if declared is not None and declared[0] is data:
                total = declared[1]
            else:
                total = frame_length(data, self.limits)
            if len(data) >= total:
                return data
            self._buffer = self.pool.acquire(total) if self.pool else bytearray(total)
            self._buffer[: len(data)] = data
            self._filled, self._total = len(data), total
            return None
        end = self._filled + len(data)
        if end > self._total:
            self.reset()
            raise ProtocolError("frame part overflows the announced length")
        self._buffer[self._filled : end] = data
        self._filled = end
        if end < self._total:
            return None
        frame = memoryview(self._buffer)[: self._total]
        self.reset()
        return frame


class MessageReader:
    """Parse the messages of one connection, joining multi-part binary frames.

    Args:
        limits: bounds on binary frames (a joined frame included).
        pool: reuses the buffers of joined frames; give a message's arrays
            back with ``pool.release(message.parameters)`` once done with them.
    """

    def __init__(
        self, limits: Limits = DEFAULT_LIMITS, pool: BufferPool | None = None
    ) -> None:
        self.limits = limits
        self._assembler = FrameAssembler(limits, pool)

    def feed(self, data: str | bytes | bytearray) -> Message | None:
        """Take one WebSocket message; return a complete message or None.

        Raises:
            ProtocolError: for malformed input; a partial frame is dropped.
        """
        if isinstance(data, str):
            if self._assembler.in_progress:
                self._assembler.reset()
                raise ProtocolError("text frame inside a multi-part binary frame")
            return parse(data, self.limits)
        try:
            frame = self._assembler.feed(data)
        except ProtocolError:
            self._assembler.reset()
            raise
        return None if frame is None else parse(frame, self.limits)

    @property
    def in_progress(self) -> bool:
        """Return whether a multi-part binary frame has begun but not ended."""
        return self._assembler.in_progress

    def declared_length(self, data: str | bytes | bytearray) -> int | None:
        """Return the length of the binary frame ``data`` would start.

        None for a text message or a part that continues a frame; nothing is
        allocated, so a caller can refuse a frame before :meth:`feed` joins it.

        Raises:
            ProtocolError: on a malformed first part; nothing is kept.
        """
        if isinstance(data, str):
            return None
        try:
            return self._assembler.declared_length(data)
        except ProtocolError:
            self._assembler.reset()
            raise

    def reset(self) -> None:
        """Drop a partly received multi-part frame."""
        self._assembler.reset()
