"""The reference reader: ``read()`` for programs (docs/api.md), ``me162-read`` for people."""

from __future__ import annotations

TYPE_CHECKING = False  # typing itself costs a start-up 5 to 15 ms

__all__ = ["Failure", "PortError", "ReaderError", "Reading", "Register", "Session", "read"]

if TYPE_CHECKING:
    from typing import Any

    from me162.reader.api import Reading, Register, Session, read
    from me162.reader.driver import PortError
    from me162.reader.session import Failure, ReaderError


def __getattr__(name: str) -> Any:
    # Lazy: `import me162.reader.cli` must not pay for pyserial and the driver.
    if name in ("read", "Reading", "Register", "Session"):
        from me162.reader import api

        return getattr(api, name)
    if name == "PortError":
        from me162.reader.driver import PortError

        return PortError
    if name in ("Failure", "ReaderError"):
        from me162.reader import session

        return getattr(session, name)
    raise AttributeError(f"module 'me162.reader' has no attribute {name!r}")
