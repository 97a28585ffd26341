"""Benchmark of the test suite: how long `make test` takes in the checkout, and `.ci/run` as CI meets it.

python -m benchmarks.bench_suite [--runs checkout,fresh] [--logs DIR]

`checkout` times `make test` here (ruff, the project's bytecode, pytest), the virtual environment installed and
torch.compile's cache as it is. `fresh` clones this checkout's HEAD into a temporary folder, with ../shared
linked beside it, and times `.ci/run` there with an empty torch.compile cache and none of this checkout's
environment, as a new machine runs it: the virtual environment installed from pyproject.toml, then `make test`.
Prints the machine, the load at the start, and per run the wall time and pytest's count and seconds; each run's
whole output goes to a log in --logs. Nothing else should run meanwhile: the suite keeps both cores busy.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import tempfile
import time
from datetime import date
from pathlib import Path

from actrec.errors import ActrecError, run_main
from benchmarks.machine import describe_machine
from benchmarks.results import figure, parse_args

REPO = Path(__file__).resolve().parents[1]
# pytest's last line: "629 passed, 1 skipped, 1 warning in 848.40s (0:14:08)"
SUMMARY = re.compile(r"^=*\s*(?P<counts>\d+ passed[^\n]*?)(?:, \d+ warnings?)? in (?P<seconds>[\d.]+)s", re.M)


def pytest_summary(output: str) -> tuple[str, float]:
    """What pytest's last line says: the counts ("629 passed, 1 skipped") and the seconds it took."""
    found = list(SUMMARY.finditer(output))
    if not found:
        raise ActrecError("the output holds no pytest summary line (did pytest run?)")
    return found[-1]["counts"], float(found[-1]["seconds"])


def minutes(seconds: float) -> str:
    whole, rest = divmod(round(seconds), 60)
    return f"{whole} min {rest} s"


def timed(command: list[str], cwd: Path, env: dict[str, str], log: Path) -> tuple[float, str]:
    """Run `command`, its output into `log`; the wall time and the output. A failed run is an error."""
    start = time.monotonic()
    with log.open("w") as out:
        done = subprocess.run(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
    seconds = time.monotonic() - start
    if done.returncode:
        raise ActrecError(f"{' '.join(command)} failed (exit {done.returncode}) in {cwd}: see {log}")
    return seconds, log.read_text()


def fresh_environment(inductor_cache: Path) -> dict[str, str]:
    """This process's environment without the checkout's virtual environment, and a new torch.compile cache."""
    venv = str(REPO / ".venv" / "bin")
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p != venv)
    return {**env, "TORCHINDUCTOR_CACHE_DIR": str(inductor_cache)}


def run_checkout(log: Path) -> tuple[float, str]:
    return timed(["make", "test"], REPO, dict(os.environ), log)


def run_fresh(log: Path) -> tuple[float, str]:
    with tempfile.TemporaryDirectory(prefix="actrec-suite-") as tmp:
        folder = Path(tmp)
        (folder / "shared").symlink_to((REPO.parent / "shared").resolve())
        clone = folder / REPO.name
        subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
        return timed([str(clone / ".ci" / "run")], clone, fresh_environment(folder / "inductor"), log)


# name → (how it runs, what it prints before its figures)
RUNS = {
    "checkout": (
        run_checkout,
        "make test in the checkout (virtual environment installed, torch.compile's cache as it is)",
    ),
    "fresh": (
        run_fresh,
        ".ci/run in a fresh clone beside ../shared (installs the virtual environment; compile cache empty)",
    ),
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default=",".join(RUNS), help=f"comma-separated, of {', '.join(RUNS)}")
    parser.add_argument("--logs", type=Path, default=Path(tempfile.gettempdir()), help="folder for each run's log")
    args = parse_args(parser, argv)
    runs = args.runs.split(",")
    if unknown := set(runs) - set(RUNS):
        raise ActrecError(f"--runs: no such run {sorted(unknown)} (known: {', '.join(RUNS)})")
    print(describe_machine())
    print(f"date: {date.today().isoformat()}; load average {os.getloadavg()[0]:.1f} at the start")
    for name in runs:
        log = args.logs / f"actrec-suite-{name}.log"
        run, what = RUNS[name]
        seconds, output = run(log)
        counts, pytest_seconds = pytest_summary(output)
        figure(f"{name}_seconds", round(seconds))
        figure(f"{name}_pytest_seconds", pytest_seconds)
        print(f"{what}: {minutes(seconds)}; pytest {counts} in {pytest_seconds:.0f} s")


if __name__ == "__main__":
    run_main(main)
