#!/usr/bin/python3
"""Prints "PASSED FAILED" for a meson testlog.json.

cmocka binaries print "[  PASSED  ] N test(s)." and "[  FAILED  ] N test(s)";
those counts are used so that each test case counts once. A binary that
crashed or timed out without a summary counts as one failure.
"""
import json
import re
import sys

passed = failed = 0
try:
    lines = open(sys.argv[1]).read().splitlines()
except OSError:
    print("0 1")
    sys.exit(0)
for line in lines:
    t = json.loads(line)
    out = t.get("stdout", "") + t.get("stderr", "")
    p = re.findall(r"\[  PASSED  \] (\d+) test", out)
    f = re.findall(r"\[  FAILED  \] (\d+) test", out)
    ok = t.get("result") in ("OK", "EXPECTEDFAIL", "SKIP")
    if p or f:
        passed += sum(map(int, p))
        failed += sum(map(int, f))
        if not ok and not f:
            failed += 1
    else:
        passed += ok
        failed += not ok
print(passed, failed)
