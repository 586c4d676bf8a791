"""Custom construct classes the frame definitions need.

- :class:`UpTo` reads bytes up to (not including) the first of several terminators, which may
  be longer than one byte (``b"\\r\\n"``, ``b"!"``, ETX or EOT); it builds by writing the bytes
  after checking that no terminator hides inside them.
- :class:`BccField` is the block check character: parsing reads one byte (any value) and, unless
  the parse was called with ``verify_bcc=False``, compares it with the 7-bit XOR of the byte range
  given by a context lambda; building writes the computed BCC, or the given value when one is
  given (the virtual meter's faults set wrong ones on purpose).
"""

from __future__ import annotations

from typing import Any

import construct as cs
from construct.core import stream_read, stream_read_entire, stream_seek, stream_tell, stream_write

from me162.protocol.bcc import xor7
from me162.protocol.errors import BccError, FramingError


class UpTo(cs.Construct):  # type: ignore[type-arg]
    """Bytes up to the first of ``terms``; the terminator is left in the stream."""

    def __init__(self, *terms: bytes, what: str = "field") -> None:
        super().__init__()
        self.terms = terms
        self.what = what

    def _parse(self, stream: Any, context: Any, path: Any) -> bytes:
        start = stream_tell(stream, path)
        rest: bytes = stream_read_entire(stream, path)
        hits = [p for p in (rest.find(t) for t in self.terms) if p >= 0]
        if not hits:
            wanted = " or ".join(repr(t) for t in self.terms)
            raise FramingError(f"{self.what} not terminated: no {wanted} found", start + len(rest))
        end = min(hits)
        stream_seek(stream, start + end, 0, path)
        return rest[:end]

    def _build(self, obj: Any, stream: Any, context: Any, path: Any) -> Any:
        data = obj.encode("latin-1") if isinstance(obj, str) else bytes(obj)
        for t in self.terms:
            if t in data:
                raise FramingError(f"{self.what} {data!r} contains its terminator {t!r}")
        stream_write(stream, data, len(data), path)
        return data

    def _sizeof(self, context: Any, path: Any) -> int:
        raise cs.SizeofError("UpTo has no fixed size", path=path)


class BccField(cs.Construct):  # type: ignore[type-arg]
    """One BCC byte covering ``bytesfunc(context)``; see the module docstring."""

    def __init__(self, bytesfunc: Any) -> None:
        super().__init__()
        self.bytesfunc = bytesfunc
        self.flagbuildnone = True

    def _parse(self, stream: Any, context: Any, path: Any) -> int:
        offset = stream_tell(stream, path)
        try:
            received = stream_read(stream, 1, path)[0]
        except cs.StreamError:
            raise FramingError("message ends after ETX/EOT without its BCC byte", offset) from None
        computed = xor7(self.bytesfunc(context))
        verify = context._params.get("verify_bcc", True) if "_params" in context else True
        if verify and received & 0x7F != computed:
            raise BccError(computed, received, offset)
        return int(received)

    def _build(self, obj: Any, stream: Any, context: Any, path: Any) -> int:
        value = xor7(self.bytesfunc(context)) if obj is None else int(obj)
        stream_write(stream, bytes([value]), 1, path)
        return value

    def _sizeof(self, context: Any, path: Any) -> int:
        return 1
