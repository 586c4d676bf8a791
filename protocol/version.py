"""The version of me162: the one place it is written (pyproject.toml reads it from here, and
``me162-read --version`` and friends print it without asking the package metadata, which
would cost a start-up 20 ms)."""

__version__ = "0.1.0"
