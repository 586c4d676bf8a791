"""Readers that misbehave in ways a suite must survive: hang, crash, flood, print garbage."""

import sys
import time

how = sys.argv[2]
if how == "hang":
    time.sleep(3600)
elif how == "crash":
    raise RuntimeError("the reader under test fell over")
elif how == "flood":
    sys.stdout.write("x" * (3 * 1024 * 1024))
elif how == "garbage":
    print("}{ not json at all")
sys.exit(0)
