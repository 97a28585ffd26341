"""A benchmark's figures as a file of the repo, with the machine, the date and the command that made them.

`benchmarks/results/NAME.json` is a figure's one home. `python -m tools.render_results` writes `NAME.md` beside
it (the table the docs include) and the README's marked blocks, so a rerun updates every page that quotes it,
and a user's own run, which writes only `reports/`, changes no reference figure.
"""

from __future__ import annotations

import argparse
import atexit
import io
import json
import shlex
import sys
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path

from benchmarks.machine import describe_machine

RESULTS = Path(__file__).resolve().parent / "results"

Cell = str | int | float | None


@dataclass(frozen=True)
class Results:
    """One measured table: what ran it (machine, date, command), its columns and rows, and a note on conditions."""

    machine: str
    date: str
    command: str
    columns: list[str] = field(default_factory=list)
    rows: list[list[Cell]] = field(default_factory=list)
    note: str = ""
    figures: dict[str, float] = field(default_factory=dict)  # the raw numbers a test compares runs with
    output: str = ""  # what the benchmark printed, where it wrote no table of its own

    def markdown(self, name: str) -> str:
        """The table as the docs show it, with the line saying where its figures come from."""
        lines = [f"<!-- python -m tools.render_results writes this table from benchmarks/results/{name}.json -->", ""]
        if self.rows:
            lines += [_row(self.columns), _row(["---"] * len(self.columns)), *(_row(row) for row in self.rows), ""]
        if self.output:
            lines += ["```text", self.output.rstrip("\n"), "```", ""]
        lines += [
            f"Machine: {self.machine}. Measured {self.date}. Command: {_code(self.command)}."
            + (f" {self.note}" if self.note else ""),
        ]
        return "\n".join(lines) + "\n"


def _text(cell: Cell) -> str:
    return "" if cell is None else str(cell)


def _row(cells: list[Cell]) -> str:
    return "| " + " | ".join(_text(c).replace("|", "\\|") for c in cells) + " |"


def _code(command: str) -> str:
    """A bare command in backticks; a sentence that quotes its commands already as it is."""
    return command if "`" in command else f"`{command}`"


def read(path: Path) -> Results:
    data = json.loads(path.read_text())
    return Results(**data)


# Raw numbers a benchmark records beside what it prints (`figure`): written to the results file's `figures`.
FIGURES: dict[str, float] = {}


def figure(name: str, value: float) -> float:
    """Keep `value` under `name` for the results file (with --results), so that a test or a page can take the
    number itself rather than read it back out of the printed text; returns it."""
    FIGURES[name] = value
    return value


def command_line() -> str:
    """How this process was started, as one would type it: `python -m benchmarks.NAME ARGS`."""
    module = Path(sys.argv[0]).stem
    return shlex.join(["python", "-m", f"benchmarks.{module}", *sys.argv[1:]])


def write(path: Path, output: str) -> Path:
    """Write what a benchmark printed with this machine, today's date and the command line; say where it went."""
    machine = describe_machine()
    results = Results(
        machine=machine.removeprefix("machine: "),
        date=date.today().isoformat(),
        command=command_line(),
        output="\n".join(line for line in output.splitlines() if line != machine),
        figures=dict(FIGURES),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(results), indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {path} (python -m tools.render_results puts it on the docs' pages)")
    return path


class _Tee(io.TextIOBase):
    """stdout as it was, with a copy of every line kept."""

    def __init__(self, stream: io.TextIOBase) -> None:
        self.stream, self.kept = stream, io.StringIO()

    def write(self, text: str) -> int:
        self.kept.write(text)
        return self.stream.write(text)

    def flush(self) -> None:
        self.stream.flush()


def parse_args(parser: argparse.ArgumentParser, argv: list[str] | None = None) -> argparse.Namespace:
    """A benchmark's arguments, `--results FILE` among them; with it, what the benchmark prints goes to FILE too,
    written when the process ends without an error (a failed run leaves the file it had)."""
    parser.add_argument(
        "--results",
        type=Path,
        default=None,
        metavar="FILE",
        help="also write what this prints, with the machine, the date and the command line, to FILE "
        "(benchmarks/results/NAME.json: python -m tools.render_results puts it on the docs' pages)",
    )
    args = parser.parse_args(argv)
    if args.results is not None:
        tee, failed = _Tee(sys.stdout), []
        sys.stdout = tee
        hook = sys.excepthook

        def failing(*exc: object) -> None:
            failed.append(exc)
            hook(*exc)  # type: ignore[arg-type]

        def finish() -> None:
            sys.stdout = tee.stream
            if not failed:
                write(args.results, tee.kept.getvalue())

        sys.excepthook = failing
        atexit.register(finish)
    return args
