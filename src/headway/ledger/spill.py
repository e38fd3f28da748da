"""A folder of JSON-lines files holding ledger records the database could not take yet.

Each writer appends to its own `pending-<pid>-<id>.jsonl`. Replaying first *claims* a file by
renaming it to `replay-...` (atomic), so appends that come later start a fresh pending file and a
file is never read while it grows. A claimed file is deleted only after its records are stored; if
that fails, or the process dies meanwhile, it is claimed again later. Inserts are idempotent, so a
record replayed twice is still counted once.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Iterable
from pathlib import Path

import orjson

from headway.ledger.record import UsageRecord

log = logging.getLogger("headway.ledger")


class SpillDir:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._tag = f"{os.getpid()}-{secrets.token_hex(4)}"
        self._pending = self.path / f"pending-{self._tag}.jsonl"

    def append(self, records: Iterable[UsageRecord]) -> int:
        """Append records durably (fsync), returning how many were written."""
        data = b"".join(orjson.dumps(r.to_json()) + b"\n" for r in records)
        if not data:
            return 0
        self.path.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._pending, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        return data.count(b"\n")

    def claim(self) -> list[Path]:
        """Take every spilled file (of any process, dead or alive) for replaying."""
        if not self.path.is_dir():
            return []
        claimed: list[Path] = []
        for i, f in enumerate(sorted(self.path.glob("*.jsonl"))):
            target = self.path / f"replay-{self._tag}-{i}-{secrets.token_hex(2)}.jsonl"
            try:
                f.rename(target)
            except FileNotFoundError:
                continue  # another process claimed it first
            claimed.append(target)
        return claimed

    @staticmethod
    def read(path: Path) -> list[UsageRecord]:
        records: list[UsageRecord] = []
        with path.open("rb") as fh:
            for n, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    records.append(UsageRecord.from_json(orjson.loads(line)))
                except (orjson.JSONDecodeError, TypeError) as exc:
                    # only a line cut short by a crash mid-append can look like this
                    log.warning("skipping unreadable ledger record %s:%d: %s", path, n, exc)
        return records

    @staticmethod
    def done(path: Path) -> None:
        path.unlink(missing_ok=True)
