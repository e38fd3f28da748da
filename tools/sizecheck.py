"""Fail when a module grows past the size limit: one concept per module keeps the code readable.

Exceptions are listed with the reason they are allowed to be longer.
"""

from __future__ import annotations

import sys
from pathlib import Path

LIMIT = 600
EXCEPTIONS: dict[str, str] = {
    # path relative to the repository root -> why it may be longer
}


def main() -> int:
    root = Path(__file__).resolve().parent.parent
    bad: list[str] = []
    for top in ("src", "tests", "bench"):
        for path in sorted((root / top).rglob("*.py")):
            rel = path.relative_to(root).as_posix()
            lines = sum(1 for _ in path.open(encoding="utf-8"))
            if lines > LIMIT and rel not in EXCEPTIONS:
                bad.append(f"{rel}: {lines} lines (limit {LIMIT})")
    for line in bad:
        print(line)
    if bad:
        print("split these modules by concept, or list them in tools/sizecheck.py with a reason")
        return 1
    print(f"sizecheck: every module is within {LIMIT} lines (or listed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
