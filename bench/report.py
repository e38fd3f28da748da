"""Rows of results, the printed table, and the one JSON line of named figures at the end."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import orjson

#: how a row compares the gateway with the direct baseline
Compare = Literal["ratio", "added", "none"]


@dataclass(slots=True)
class Row:
    scenario: str
    metric: str
    unit: str
    gateway: float | None
    direct: float | None = None
    compare: Compare = "ratio"
    #: the issue's target: ("min" | "max", value, applies to "gateway" | "ratio" | "added")
    target: tuple[str, float, str] | None = None

    @property
    def derived(self) -> float | None:
        if self.gateway is None or self.direct is None or self.compare == "none":
            return None
        if self.compare == "added":
            return self.gateway - self.direct
        return self.gateway / self.direct if self.direct else None

    def verdict(self) -> str:
        if self.target is None:
            return ""
        kind, bound, on = self.target
        value = self.derived if on in ("ratio", "added") else self.gateway
        if value is None or math.isnan(value):
            return "n/a"
        ok = value >= bound if kind == "min" else value <= bound
        return "ok" if ok else "MISS"

    def target_text(self) -> str:
        if self.target is None:
            return ""
        kind, bound, on = self.target
        sign = ">=" if kind == "min" else "<="
        what = {"gateway": "", "ratio": "ratio ", "added": "added "}[on]
        return f"{what}{sign} {_fmt(bound)}"


@dataclass(slots=True)
class Report:
    rows: list[Row] = field(default_factory=list)
    figures: dict[str, object] = field(default_factory=dict)

    def add(self, row: Row) -> Row:
        self.rows.append(row)
        return row

    def table(self) -> str:
        head = ("scenario", "metric", "direct", "gateway", "ratio/added", "target", "")
        lines = [head]
        for r in self.rows:
            derived = r.derived
            if derived is None:
                shown = ""
            elif r.compare == "added":
                shown = (
                    f"+{_fmt(derived)} {r.unit}" if derived >= 0 else f"{_fmt(derived)} {r.unit}"
                )
            else:
                shown = f"x{derived:.3f}"
            lines.append(
                (
                    r.scenario,
                    f"{r.metric} ({r.unit})",
                    _fmt(r.direct),
                    _fmt(r.gateway),
                    shown,
                    r.target_text(),
                    r.verdict(),
                )
            )
        widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
        out = []
        for n, line in enumerate(lines):
            out.append("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)))
            if n == 0:
                out.append("  ".join("-" * w for w in widths))
        return "\n".join(s.rstrip() for s in out)

    def json_line(self) -> str:
        return orjson.dumps(_clean(self.figures), option=orjson.OPT_SORT_KEYS).decode()


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3f}"


def _clean(value: object) -> object:
    """Floats rounded for reading; NaN and infinities become null (JSON has neither)."""
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return None
        return round(value, 4)
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value
