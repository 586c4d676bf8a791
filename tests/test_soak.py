"""A bounded chaos soak of the reference reader (the full one, 5,000 sessions, is
bench/bench_soak.py): no wrong value accepted, no hang, no traceback."""

from __future__ import annotations

import logging

import pytest

from me162.reader.soak import soak


def test_300_faulted_sessions_accept_no_wrong_value_never_hang_never_crash(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR)
    tally = soak(300)
    assert tally.sessions == 300
    assert tally.total["wrong value accepted"] == 0, tally.examples
    assert tally.total["hang"] == 0, tally.examples
    assert tally.total["traceback"] == 0, tally.examples
    # The soak must be able to see faults: most sessions were hit, and some failed cleanly.
    assert tally.total["success"] > 200 and tally.total["clean failure"] > 0
    assert len(tally.by_fault) > 5
