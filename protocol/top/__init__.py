"""me162: a test bench for IEC 62056-21 meter readers — a virtual Iskra ME162 (``me162.simulator``),
a reference reader (``me162.reader``), a conformance suite (``me162.conformance``), real-meter
captures (``me162.fixtures``) and the frames both ends share (``me162.protocol``).

This file is the ``me162`` package itself (it lives in ``protocol/top/``: the repository keeps
one folder per part); it only says which version is installed.
"""

from me162.protocol.version import __version__

__all__ = ["__version__"]
