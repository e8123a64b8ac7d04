"""CLI start-up time: wall clock of `splitplan --help`, `splitplan catalog ...`, the bare import and a
one-iteration `splitplan perf` query, each a fresh interpreter, N repetitions, median (and fastest).

With `--baseline DIR` (another source tree of splitplan, e.g. `git archive <commit> | tar -x -C DIR`)
both trees are measured side by side: runs alternate between the two trees command by command, so a
noisy machine slows both alike, and the table shows the ratio of the medians (baseline / this tree).

    .venv/bin/python benchmarks/startup.py [--runs 21] [--baseline DIR [--baseline-python DIR/.venv/bin/python]]

Each command runs as `python -c "from splitplan.cli.main import main; main()" ARGS` with the tree as
working directory (first on sys.path), which is what the `splitplan` console script does.
The target (docs/startup.md): `--help` and `catalog gpus|machines|models` under 0.2 s.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE_TREE = Path(__file__).resolve().parent.parent
ENTRY = "import sys; sys.argv[0] = 'splitplan'; from splitplan.cli.main import main; main()"
TARGET_S = 0.2

# label -> the python arguments; "python -c pass" is the interpreter's own floor.
COMMANDS: dict[str, list[str]] = {
    "python -c pass": ["-c", "pass"],
    "import splitplan.cli.main": ["-c", "import splitplan.cli.main"],
    "splitplan --help": ["-c", ENTRY, "--help"],
    "splitplan catalog gpus": ["-c", ENTRY, "catalog", "gpus"],
    "splitplan catalog machines": ["-c", ENTRY, "catalog", "machines"],
    "splitplan catalog models": ["-c", ENTRY, "catalog", "models"],
    "splitplan perf (analytic)": ["-c", ENTRY, "perf", "--model", "llama2-70b", "--machine", "dgx-h100"],
    "splitplan optimize --help": ["-c", ENTRY, "optimize", "--help"],
    "splitplan simulate --help": ["-c", ENTRY, "simulate", "--help"],
    "splitplan check --help": ["-c", ENTRY, "check", "--help"],
    "splitplan calibrate --help": ["-c", ENTRY, "calibrate", "--help"],
    "splitplan report --help": ["-c", ENTRY, "report", "--help"],
}


def wall_s(python: str, args: list[str], tree: Path) -> float:
    """Seconds from spawning the interpreter to its exit (output discarded); a failure is an error."""
    start = time.perf_counter()
    subprocess.run([python, *args], cwd=tree, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=True)
    return time.perf_counter() - start


def measure(python: str | dict[Path, str], trees: list[Path], runs: int) -> dict[tuple[str, Path], list[float]]:
    """Every (command, tree) `runs` times; one warm-up each, then round-robin so drift hits all cells."""
    times: dict[tuple[str, Path], list[float]] = {(label, tree): [] for label in COMMANDS for tree in trees}
    for label, args in COMMANDS.items():
        for tree in trees:
            wall_s(_python_of(python, tree), args, tree)  # warm the file cache and .pyc files
        for _ in range(runs):
            for tree in trees:
                times[label, tree].append(wall_s(_python_of(python, tree), args, tree))
    return times


def _python_of(python: str | dict[Path, str], tree: Path) -> str:
    return python[tree] if isinstance(python, dict) else python


def _ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1e3:8.1f} ({min(values) * 1e3:6.1f})"


def print_table(times: dict[tuple[str, Path], list[float]], trees: list[Path], runs: int) -> None:
    width = max(len(label) for label in COMMANDS)
    names = ["baseline", "this tree"] if len(trees) == 2 else ["this tree"]
    header = "".join(f"  {name + ' ms median (min)':>24}" for name in names)
    print(f"{runs} runs each, wall clock of a fresh interpreter; trees: "
          + ", ".join(f"{n} = {t}" for n, t in zip(names, trees)))
    print(f"{'command':<{width}}{header}" + ("     ratio" if len(trees) == 2 else "") + "  target")
    for label in COMMANDS:
        cells = "".join(f"  {_ms(times[label, tree]):>24}" for tree in trees)
        ratio = ""
        if len(trees) == 2:
            before, after = (statistics.median(times[label, tree]) for tree in trees)
            ratio = f"  {before / after:7.1f}x"
        target = ""
        if label.startswith(("splitplan --help", "splitplan catalog")):
            ok = statistics.median(times[label, trees[-1]]) < TARGET_S
            target = f"  {'ok' if ok else 'MISSED'} (< {TARGET_S:g} s)"
        print(f"{label:<{width}}{cells}{ratio}{target}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=21, help="repetitions per command and tree (default 21)")
    parser.add_argument("--baseline", type=Path, default=None, help="another splitplan source tree to compare")
    parser.add_argument("--python", default=sys.executable, help="interpreter with the dependencies installed")
    parser.add_argument("--baseline-python", default=None,
                        help="the baseline tree's own interpreter (its editable install maps its own data folders)")
    options = parser.parse_args()
    trees = [HERE_TREE] if options.baseline is None else [options.baseline.resolve(), HERE_TREE]
    for tree in trees:
        if not (tree / "splitplan" / "cli" / "main.py").is_file():
            parser.error(f"{tree} is not a splitplan source tree (no splitplan/cli/main.py)")
    python: str | dict[Path, str] = options.python
    if options.baseline is not None and options.baseline_python:
        python = {trees[0]: options.baseline_python, trees[1]: options.python}
    print_table(measure(python, trees, options.runs), trees, options.runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
