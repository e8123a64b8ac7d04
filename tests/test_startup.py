"""CLI start-up stays light: `--help` and `catalog` import no heavy library, commands load lazily, and
the lazy table in cli/main.py agrees with the commands it names (docs/startup.md)."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import click
import pytest

from splitplan.cli.lazy import load_command
from splitplan.cli.main import COMMANDS, cli
from splitplan.yaml_cache import CACHE_ENV

ROOT = Path(__file__).resolve().parent.parent

# Top-level packages no light command may import: the numeric, optimisation and plotting stacks.
HEAVY = ("numpy", "pandas", "scipy", "pulp", "highspy", "matplotlib")

# Run the CLI as the console script does, then report every module the interpreter loaded.
PROBE = """
import json, sys
from splitplan.cli.main import main
sys.argv = ["splitplan", *sys.argv[1:]]
try:
    main()
except SystemExit as exc:
    status = exc.code or 0
print("\\nMODULES " + json.dumps({"status": status, "modules": sorted(sys.modules)}))
"""


def loaded_modules(argv: list[str], env: dict[str, str] | None = None) -> set[str]:
    """Modules a fresh interpreter holds after running `splitplan ARGV` (which must succeed)."""
    proc = subprocess.run([sys.executable, "-c", PROBE, *argv], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.rsplit("\nMODULES ", 1)[1])
    assert report["status"] == 0, proc.stdout + proc.stderr
    return set(report["modules"])


def heavy_in(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in HEAVY)


@pytest.mark.parametrize("argv", [["--help"], [], ["--version"], ["catalog", "--help"], ["catalog", "gpus"],
                                  ["catalog", "machines"], ["catalog", "models", "--json"]],
                         ids=lambda argv: " ".join(argv) or "bare")
def test_light_commands_import_no_heavy_library(argv: list[str]) -> None:
    modules = loaded_modules(argv)
    assert not heavy_in(modules), f"splitplan {' '.join(argv)} imported {heavy_in(modules)[:8]}"
    assert "splitplan.perf.build" not in modules  # the performance backends are not needed to list a catalog


def _help_argvs() -> list[list[str]]:
    """`CMD --help` for every command in COMMANDS, and `GROUP SUB --help` for each subcommand of a group."""
    argvs = []
    for name, lazy in sorted(COMMANDS.items()):
        argvs.append([name, "--help"])
        command = load_command(lazy.target)
        if isinstance(command, click.Group):
            argvs += [[name, sub, "--help"] for sub in sorted(command.commands)]
    return argvs


@pytest.mark.parametrize("argv", _help_argvs(), ids=lambda argv: " ".join(argv[:-1]))
def test_every_command_help_imports_no_heavy_library(argv: list[str]) -> None:
    """A command's --help needs its flags, not the planner: the heavy work is imported when it runs."""
    modules = loaded_modules(argv)
    assert not heavy_in(modules), f"splitplan {' '.join(argv)} imported {heavy_in(modules)[:8]}"


def test_trace_choices_match_the_workload_vocabulary() -> None:
    from splitplan.cli import trace_cmd
    from splitplan.workload import ARRIVAL_PROCESSES, GENERATORS

    assert sorted(trace_cmd.GENERATOR_CHOICES) == sorted(GENERATORS)
    assert trace_cmd.ARRIVAL_CHOICES == ARRIVAL_PROCESSES


# Imported only to parse YAML, to locate data through a package API, or to suggest a name in an error.
NOT_AT_START = ("yaml", "importlib.resources", "difflib")


def _among(modules: set[str], names: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if any(m == n or m.startswith(n + ".") for n in names))


@pytest.mark.parametrize("kind", ["gpus", "machines", "models"])
def test_catalog_with_a_warm_parse_cache_imports_no_yaml(kind: str, tmp_path: Path) -> None:
    """The first run parses the bundled catalog (and fills the cache: splitplan/yaml_cache.py); the next
    reads the cached data and needs neither PyYAML, nor importlib.resources (resources.py finds the data
    folders through find_spec), nor difflib (only an error message uses it)."""
    env = {**os.environ, CACHE_ENV: str(tmp_path / "cache")}
    cold = loaded_modules(["catalog", kind], env=env)
    assert "yaml" in cold  # the probe sees the parse a cold cache needs
    assert not _among(cold, NOT_AT_START[1:]), _among(cold, NOT_AT_START[1:])
    warm = loaded_modules(["catalog", kind], env=env)
    assert not _among(warm, NOT_AT_START), f"splitplan catalog {kind} (warm cache) imported {_among(warm, NOT_AT_START)}"


def test_group_help_imports_no_command_module() -> None:
    modules = loaded_modules(["--help"])
    commands = sorted(m for m in modules if m.startswith("splitplan.cli.") and m.endswith("_cmd"))
    assert not commands, f"splitplan --help imported {commands}: list the command in cli/main.py COMMANDS"
    assert not any(m.split(".")[0] == "rich" for m in modules)  # click prints the group's help


def test_analytic_perf_query_needs_numpy_only() -> None:
    """`splitplan perf` on the default analytic model loads neither pandas (profile backend, calibrate)
    nor scipy (calibrate's fitting)."""
    modules = loaded_modules(["perf", "--model", "llama2-70b", "--machine", "dgx-h100", "--json"])
    assert heavy_in(modules) and {m.split(".")[0] for m in heavy_in(modules)} == {"numpy"}, heavy_in(modules)[:8]


def test_analytic_simulation_needs_numpy_only(tmp_path) -> None:
    """`splitplan simulate` on the analytic model reads the trace without pandas and builds no result frame
    unless the run is written; writing it (--out) is what brings pandas in."""
    argv = ["simulate", "--model", "llama2-70b", "--prompt", "dgx-h100:2", "--token", "dgx-a100:2", "--trace",
            "AzureLLMInferenceTrace_conv.csv", "--rate", "4", "--duration", "10", "--quiet"]
    modules = loaded_modules(argv)
    assert {m.split(".")[0] for m in heavy_in(modules)} == {"numpy"}, heavy_in(modules)[:8]
    assert "pandas" in loaded_modules([*argv, "--out", str(tmp_path / "run")])


def test_a_heavy_command_still_loads_its_libraries() -> None:
    """The probe can see heavy imports: what `optimize` imports when it runs (the optimizer) brings numpy
    and PuLP, but neither pandas (tables are built where they are written) nor scipy.stats (the capacity
    model's Poisson quantiles come from scipy.special, when a model is built)."""
    code = "import json, sys; import splitplan.plan.optimize; print(json.dumps(sorted(sys.modules)))"
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    modules = set(json.loads(proc.stdout))
    assert "numpy" in modules and "pulp" in modules
    assert "pandas" not in modules and "scipy.stats" not in modules, heavy_in(modules)[:8]


def test_help_starts_fast() -> None:
    """A generous bound (the target is 0.2 s; it took about 1 s with eager imports): fastest of 3."""
    fastest = min(_wall_s(["--help"]) for _ in range(3))
    assert fastest < 0.5, f"splitplan --help took {fastest:.3f} s"


def _wall_s(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "splitplan.cli.main", *argv], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL, timeout=120)
    return time.perf_counter() - start


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_lazy_entry_matches_its_command(name: str) -> None:
    command = load_command(COMMANDS[name].target)
    assert command.name == name
    assert not command.hidden
    assert command.get_short_help_str(limit=10**6) == COMMANDS[name].summary, (
        f"update the summary of {name!r} in splitplan/cli/main.py COMMANDS to the docstring's first sentence")


def test_group_listing_is_clicks_own() -> None:
    """The lazy listing equals what click prints for the same commands imported, at several widths."""
    eager = click.Group("splitplan", commands={name: load_command(entry.target) for name, entry in COMMANDS.items()})
    for width in (60, 80, 100, 160):
        lazy_out, eager_out = click.HelpFormatter(width=width), click.HelpFormatter(width=width)
        cli.format_commands(click.Context(cli), lazy_out)
        eager.format_commands(click.Context(eager), eager_out)
        assert lazy_out.getvalue() == eager_out.getvalue()


def test_every_command_module_command_is_registered() -> None:
    """A click command defined in splitplan/cli/*_cmd.py, and not a subcommand of a group there, has an
    entry in COMMANDS (else it would silently be missing from the CLI)."""
    targets = {entry.target for entry in COMMANDS.values()}
    missing = []
    for path in sorted((ROOT / "splitplan" / "cli").glob("*_cmd.py")):
        module = importlib.import_module(f"splitplan.cli.{path.stem}")
        found = {name: obj for name, obj in vars(module).items() if isinstance(obj, click.Command)}
        subcommands = {id(sub) for obj in found.values() if isinstance(obj, click.Group) for sub in obj.commands.values()}
        missing += [f"{module.__name__}:{name}" for name, obj in found.items()
                    if id(obj) not in subcommands and f"{module.__name__}:{name}" not in targets]
    assert not missing, f"add to splitplan/cli/main.py COMMANDS: {missing}"


def test_unknown_command_suggests_from_all_commands() -> None:
    """click suggests close names from the commands it holds; the lazy group offers all of them."""
    if not hasattr(click.exceptions, "NoSuchCommand"):  # click < 8.4 makes no suggestion at all
        pytest.skip("this click has no NoSuchCommand")
    proc = subprocess.run([sys.executable, "-m", "splitplan.cli.main", "simulat"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2
    assert "Did you mean 'simulate'?" in proc.stderr
