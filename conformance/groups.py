"""The conformance groups, in catalogue order (a module of its own: ``me162-check --help``
names them without loading the catalogue)."""

GROUPS = ("LINE", "FRAME", "SESSION", "PROG", "DATA", "ROBUST", "REPLAY")
