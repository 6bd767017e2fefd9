#!/usr/bin/python3
"""Counts results from meson's testlog.json files (one TAP line per subtest) and pytest's
JUnit XML, and prints one line: "N passed, N failed, N skipped". Exit 1 if anything failed."""
import json
import re
import sys
import xml.etree.ElementTree as ET

passed = failed = skipped = 0


def count_tap(text):
    p = f = s = 0
    for line in text.splitlines():
        m = re.match(r"^(not ok|ok)\b(.*)$", line.strip())
        if not m:
            continue
        if re.search(r"#\s*SKIP", m.group(2), re.I):
            s += 1
        elif m.group(1) == "ok":
            p += 1
        else:
            f += 1
    return p, f, s


for path in sys.argv[1:]:
    try:
        if path.endswith(".json"):
            with open(path) as fh:
                for line in fh:
                    if not line.strip():
                        continue
                    t = json.loads(line)
                    p, f, s = count_tap(t.get("stdout") or "")
                    result = t.get("result")
                    if result not in ("OK", "SKIP", "EXPECTEDFAIL") and f == 0:
                        f = 1  # crashed or timed out without a TAP failure line
                    if p + f + s == 0:
                        if result == "SKIP":
                            s = 1
                        elif result == "OK":
                            p = 1
                    passed += p
                    failed += f
                    skipped += s
        else:
            root = ET.parse(path).getroot()
            suites = [root] if root.tag == "testsuite" else list(root)
            for suite in suites:
                for case in suite.iter("testcase"):
                    tags = {c.tag for c in case}
                    if "failure" in tags or "error" in tags:
                        failed += 1
                    elif "skipped" in tags:
                        skipped += 1
                    else:
                        passed += 1
    except (OSError, ValueError, ET.ParseError) as e:
        print(f"cannot read {path}: {e}", file=sys.stderr)
        failed += 1

print(f"{passed} passed, {failed} failed, {skipped} skipped")
sys.exit(1 if failed else 0)
