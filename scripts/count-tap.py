"""Counts every check of the meson test logs given: the TAP lines of each
test, or the test itself when it printed none, and a test that failed
although its checks passed (a crash after the last one) as one failure.
A file ending in .tap is plain TAP output (fuzz/run.sh) and counted by
its lines; a missing one counts as one failure."""
import json
import re
import sys

passed = failed = 0
for path in sys.argv[1:]:
    if path.endswith(".tap"):
        try:
            with open(path, encoding="utf-8") as tap:
                text = tap.read()
        except OSError:
            failed += 1
            continue
        ok = len(re.findall(r"^ok ", text, re.M))
        bad = len(re.findall(r"^not ok ", text, re.M))
        passed += ok
        failed += bad if ok + bad else 1
        continue
    with open(path, encoding="utf-8") as log:
        for line in log:
            test = json.loads(line)
            out = test.get("stdout") or ""
            ok = len(re.findall(r"^ok \d+", out, re.M))
            bad = len(re.findall(r"^not ok \d+", out, re.M))
            if ok + bad == 0:
                ok, bad = (1, 0) if test["result"] in ("OK", "SKIP") else (0, 1)
            elif test["result"] not in ("OK", "SKIP") and bad == 0:
                bad = 1
            passed += ok
            failed += bad
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
