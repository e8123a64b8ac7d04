"""Entry point: the click group, and the one place user errors become one line and exit status 2."""

from __future__ import annotations

import os
import sys

import click

from splitplan.cli.lazy import LazyCommand, LazyGroup
from splitplan.errors import USAGE_EXIT_CODE, SplitplanError

# Every top-level command: name -> LazyCommand("module:attribute", "first sentence of its docstring").
# A command's module is imported only when that command runs or shows its help, so `splitplan --help`
# and light commands start fast (docs/startup.md). Adding a command is one entry here;
# tests/test_startup.py checks each summary against the command's docstring.
COMMANDS: dict[str, LazyCommand] = {
    "benchmark": LazyCommand("splitplan.cli.benchmark_cmd:benchmark_command",
                             "Simulate the closed-loop benchmark: C clients, each sending ISL tokens and receiving "
                             "exactly OSL tokens, the next request as soon as one finishes."),
    "calibrate": LazyCommand("splitplan.cli.calibrate_cmd:calibrate_command",
                             "Fit a stack's parameters, per GPU architecture, to a measured step-time profile."),
    "catalog": LazyCommand("splitplan.cli.catalog_cmd:catalog_command",
                           "List the GPUs, machines or models splitplan knows, with their numbers."),
    "check": LazyCommand("splitplan.cli.check_cmd:check_command",
                         "Re-run scenario files that have an expect: block and compare with their expectations."),
    "deploy": LazyCommand("splitplan.cli.deploy_cmd:deploy_command",
                          "Write what a verified plan needs to run on an engine or an orchestrator."),
    "docs": LazyCommand("splitplan.cli.docs_cmd:docs_group", "Generate documentation from the code."),
    "optimize": LazyCommand("splitplan.cli.optimize_cmd:optimize_command",
                            "Optimize the cluster designs of a scenario file under its budgets and SLOs; every "
                            "reported plan is confirmed by the simulator on several seeds."),
    "perf": LazyCommand("splitplan.cli.perf_cmd:perf_command",
                        "Predict one iteration: its time, throughput, KV cache and power."),
    "predict": LazyCommand("splitplan.cli.calibrate_cmd:predict_command",
                           "Predict every row of a measured profile and report the errors per (hardware, phase)."),
    "report": LazyCommand("splitplan.cli.report_cmd:report_command", "HTML report of an optimize or simulate output."),
    "reproduce": LazyCommand("splitplan.cli.check_cmd:reproduce_command",
                             "Reproduce the Splitwise paper's design study and write docs/reproduction.md."),
    "simulate": LazyCommand("splitplan.cli.simulate_cmd:simulate_command",
                            "Simulate a baseline or Splitwise cluster serving a trace: latency percentiles, SLOs, "
                            "saturation, throughput, cost and power."),
    "sweep": LazyCommand("splitplan.cli.sweep_cmd:sweep_command",
                         "Optimize a scenario at every combination of varied fields and write one table of the "
                         "answers, with the frontier plot; an interrupted sweep resumes where it stopped."),
    "trace": LazyCommand("splitplan.cli.trace_cmd:trace_group",
                         "Generate workloads from traces or distributions, and summarise trace files."),
}


@click.group(cls=LazyGroup, lazy_commands=COMMANDS,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="splitplan", prog_name="splitplan")  # looked up only for --version
def cli() -> None:
    """Plan LLM inference clusters: split prompt and token phases (Splitwise) or not, on which GPUs,
    how many machines, within cost, power and latency budgets.

    \b
    Example:
      splitplan optimize scenarios/quickstart.yaml
    """


def _exit_interrupted(word: str) -> None:
    """Ctrl-C: outputs were already rolled back on the way up (atomic writers, worker pools closed);
    leave at once so interpreter shutdown cannot block joining a broken process pool's threads.
    Worker processes ignore SIGINT, so any still alive are terminated first (they would otherwise
    outlive us holding our stdout/stderr). No worker exists unless multiprocessing was imported."""
    multiprocessing = sys.modules.get("multiprocessing")
    for child in multiprocessing.active_children() if multiprocessing is not None else ():
        child.terminate()
    click.echo(word, err=True)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(130)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; user errors print one line to stderr and exit 2, never a traceback."""
    args = sys.argv[1:] if argv is None else argv
    if not args:  # a bare `splitplan` is a request for the overview, not a usage error
        click.echo(cli.get_help(click.Context(cli, info_name="splitplan")))
        sys.exit(0)
    try:
        status = cli.main(args=args, prog_name="splitplan", standalone_mode=False)
    except SplitplanError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(USAGE_EXIT_CODE)
    except click.exceptions.Abort:  # click's form of Ctrl-C
        _exit_interrupted("aborted")
    except KeyboardInterrupt:
        _exit_interrupted("interrupted")
    except click.exceptions.NoArgsIsHelpError as exc:  # a bare group: its help is the answer
        exc.show()
        sys.exit(USAGE_EXIT_CODE)
    except click.ClickException as exc:  # bad flags or arguments: one line too, not click's usage block
        ctx = getattr(exc, "ctx", None)
        hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        click.echo(f"error: command line: {' '.join(exc.format_message().split())}{hint}", err=True)
        sys.exit(USAGE_EXIT_CODE)
    except BrokenPipeError:
        sys.exit(0)
    except OSError as exc:  # unwritable --out folder, disk full, permissions: the user's to fix, in one line
        where = exc.filename or "file system"
        click.echo(f"error: {where}: {exc.strerror or exc}", err=True)
        sys.exit(USAGE_EXIT_CODE)
    sys.exit(status if isinstance(status, int) else 0)


if __name__ == "__main__":
    main()
