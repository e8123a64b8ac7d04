"""Entry point: the click group, and the one place user errors become one line and exit status 2."""

from __future__ import annotations

import multiprocessing
import os
import sys

import click

from splitplan import __version__
from splitplan.errors import USAGE_EXIT_CODE, SplitplanError


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="splitplan")
def cli() -> None:
    """Plan LLM inference clusters: split prompt and token phases (Splitwise) or not, on which GPUs,
    how many machines, within cost, power and latency budgets.

    \b
    Example:
      splitplan optimize scenarios/quickstart.yaml
    """


def _register_commands() -> None:
    from splitplan.cli import (benchmark_cmd, catalog_cmd, check_cmd, docs_cmd, optimize_cmd, perf_cmd, report_cmd,
                               simulate_cmd, trace_cmd)

    for module in (catalog_cmd, trace_cmd, report_cmd, docs_cmd, simulate_cmd, perf_cmd, benchmark_cmd, optimize_cmd,
                   check_cmd):
        for command in module.COMMANDS:
            cli.add_command(command)


_register_commands()


def _exit_interrupted(word: str) -> None:
    """Ctrl-C: outputs were already rolled back on the way up (atomic writers, worker pools closed);
    leave at once so interpreter shutdown cannot block joining a broken process pool's threads.
    Worker processes ignore SIGINT, so any still alive are terminated first (they would otherwise
    outlive us holding our stdout/stderr)."""
    for child in multiprocessing.active_children():
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
