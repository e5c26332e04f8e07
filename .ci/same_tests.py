"""Checks that two pytest runs (JUnit XML) passed and skipped the same tests.

`make test` runs the suite on Python 3.11 and on Python 3.10; a test that
passes on one interpreter and is skipped or missing on the other fails here.
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET


def outcomes(path: str) -> dict[str, str]:
    result = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        name = f"{case.get('classname')}::{case.get('name')}"
        kinds = {child.tag for child in case} & {"failure", "error", "skipped"}
        result[name] = kinds.pop() if kinds else "passed"
    return result


def main(first: str, second: str) -> int:
    a, b = outcomes(first), outcomes(second)
    differ = sorted(name for name in a.keys() | b.keys() if a.get(name) != b.get(name))
    for name in differ:
        print(f"  {name}: {a.get(name, 'missing')} in {first}, {b.get(name, 'missing')} in {second}")
    passed = sum(v == "passed" for v in a.values())
    if differ:
        print(f"same_tests: {len(differ)} tests differ between the two interpreters")
        return 1
    print(f"same_tests: both interpreters passed the same {passed} tests and skipped the same "
          f"{sum(v == 'skipped' for v in a.values())}")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
