"""bench.instr: the callgrind arithmetic, every path's calls, and one tiny real run under valgrind.

Nothing here asserts a count, only that each piece runs and the output has its shape.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from bench.procs import Cores, Proc, Procs

from bench import instr

OUT = """# callgrind format
version: 1
events: Ir
summary: {summary}

fn=(1) main
0 5
totals: {totals}
"""


@pytest.fixture
def upstream(tmp_path: Path) -> Iterator[Proc]:
    procs = Procs(tmp_path, Cores(None, None))
    try:
        yield procs.upstream()
    finally:
        procs.stop_all()


def test_totals_prefers_the_totals_line_and_falls_back_to_the_summary() -> None:
    assert instr.totals(OUT.format(summary=900, totals=1234)) == 1234
    assert instr.totals("events: Ir\nsummary: 777\n") == 777
    with pytest.raises(ValueError, match="no totals"):
        instr.totals("events: Ir\n")


def test_per_call_is_the_difference_spread_over_the_extra_calls() -> None:
    assert instr.per_call(1_000_000, 1_300_000, 100, 400) == 1000.0
    with pytest.raises(ValueError):
        instr.per_call(1, 2, 400, 400)


def test_cumulative_adds_the_dumps_in_their_numeric_order(tmp_path: Path) -> None:
    out = tmp_path / "callgrind.out"
    (out.parent / "callgrind.out.2").write_text(OUT.format(summary=30, totals=30))
    (out.parent / "callgrind.out.1").write_text(OUT.format(summary=500, totals=500))
    out.write_text(OUT.format(summary=7, totals=7))  # the shutdown: left out
    assert instr.cumulative(out) == (500, 530)
    (out.parent / "callgrind.out.10").write_text(OUT.format(summary=1, totals=1))
    with pytest.raises(RuntimeError, match="expected 2 callgrind dumps"):
        instr.cumulative(out)


@pytest.mark.parametrize("path", instr.PATHS)
async def test_every_path_makes_its_calls(path: str, upstream: Proc) -> None:
    await instr._measure(path, upstream.port, warmup=2, marks=(1, 3))


def test_without_valgrind_it_says_so_and_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert instr.main(["--paths", "raw_client"]) == 2
    assert "valgrind not found" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv", [["--paths", "nope"], ["--n1", "5", "--n2", "5"], ["--warmup", "0"]]
)
def test_bad_arguments_exit_2(argv: list[str]) -> None:
    assert instr.main(argv) == 2


@pytest.mark.timeout(600)  # valgrind is ~50x slower than the CPU; a shared machine slows it more
def test_a_tiny_real_run_prints_progress_a_table_and_a_json_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert shutil.which("valgrind") is not None, "valgrind is installed on every machine here"
    argv = ["--paths", "raw_client", "--warmup", "2", "--n1", "1", "--n2", "3"]
    assert instr.main(argv) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line]
    assert lines[0].startswith("bench.instr: 1 path(s)")
    assert lines[1].startswith("instr: raw_client") and "instructions/call" in lines[1]
    assert lines[-3].split() == ["path", "instructions/call"]
    assert lines[-2].split()[0] == "raw_client"
    figures = orjson.loads(lines[-1])
    assert figures["instr_n"] == [2, 1, 3]
    assert figures["instr_raw_client"] > 0
