"""Every command's --help carries examples that name real commands and options; docs/cli.md is current."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest

from splitplan.cli.docs_cmd import cli_reference_markdown, walk_commands
from splitplan.cli.main import cli

ROOT = Path(__file__).resolve().parent.parent
CONTEXTS = list(walk_commands(cli))


def examples(help_text: str) -> list[str]:
    """The command lines under an 'Example:' / 'Examples:' heading of a help text."""
    lines = help_text.splitlines()
    found: list[str] = []
    for i, line in enumerate(lines):
        if line.strip() in ("Example:", "Examples:"):
            for follow in lines[i + 1:]:
                if not follow.strip():
                    break
                if found and found[-1].endswith("\\"):  # shell line continuation
                    found[-1] = found[-1][:-1].rstrip() + " " + follow.strip()
                else:
                    found.append(follow.strip())
    return found


def example_commands(line: str) -> list[list[str]]:
    """argv lists of the splitplan invocations in one example line (shell redirects and pipes cut)."""
    commands = []
    for segment in re.split(r"\s(?:&&|\||;)\s", line.split(" #")[0]):
        segment = segment.split(" > ")[0].strip()
        if segment.startswith("splitplan"):
            commands.append(shlex.split(segment)[1:])
    return commands


def resolve(group: click.Group, argv: list[str]) -> tuple[click.Command, list[str], str, click.Context]:
    """The command an argv names, the arguments left for it, its name and its parent context.

    Contexts are built as a real invocation builds them (the group's context settings, parents
    chained): click caches each command's help option from the first context it sees, so a bare
    context here would turn `-h, --help` into `--help` for every later help text in the process."""
    command: click.Command = group
    parent = click.Context(group, info_name="splitplan", **group.context_settings)
    name = "splitplan"
    while isinstance(command, click.Group) and argv and not argv[0].startswith("-"):
        sub = command.get_command(parent, argv[0])
        if sub is None:
            raise click.NoSuchOption(argv[0], message=f"no such command '{parent.command_path} {argv[0]}'")
        if isinstance(sub, click.Group):
            parent = click.Context(sub, info_name=argv[0], parent=parent, **sub.context_settings)
        command, name, argv = sub, argv[0], argv[1:]
    return command, argv, name, parent


def check_argv(group: click.Group, argv: list[str]) -> str | None:
    """None if the argv names existing commands and options, else click's message."""
    try:
        command, rest, name, parent = resolve(group, argv)
        if command is not group:
            command.make_context(name, list(rest), parent=parent)
    except click.NoSuchOption as exc:
        return exc.format_message()
    except click.UsageError:
        pass  # a missing file or argument in an example is fine; only unknown names are not
    return None


def bad_examples(group: click.Group, ctx: click.Context) -> list[str]:
    """Examples in a command's help that name a command or option that does not exist."""
    problems = []
    for line in examples(ctx.get_help()):
        for argv in example_commands(line):
            message = check_argv(group, argv)
            if message:
                problems.append(f"`{line}`: {message}")
    return problems


@pytest.mark.parametrize("ctx", CONTEXTS, ids=[c.command_path for c in CONTEXTS])
def test_every_command_help_has_an_example(ctx):
    found = examples(ctx.get_help())
    assert found, f"`{ctx.command_path} --help` has no Examples: block"
    assert any(line.startswith(ctx.command_path) for line in found), \
        f"`{ctx.command_path} --help` examples never run {ctx.command_path}: {found}"


@pytest.mark.parametrize("ctx", CONTEXTS, ids=[c.command_path for c in CONTEXTS])
def test_help_examples_use_existing_commands_and_options(ctx):
    """An example with a misspelt or removed option would teach users an error."""
    assert bad_examples(cli, ctx) == []


def test_the_example_checker_catches_unknown_options_and_commands():
    @click.group()
    def group():
        """\b
        Examples:
          splitplan run --fast
          splitplan walk
          splitplan run --slow \\
              --nope
        """

    @group.command("run")
    @click.option("--slow", is_flag=True)
    def run(slow):
        """Run."""

    problems = bad_examples(group, click.Context(group, info_name="splitplan"))
    assert len(problems) == 3 and "--fast" in problems[0] and "walk" in problems[1] and "--nope" in problems[2]


def test_checking_examples_leaves_help_texts_intact():
    """Resolving every example must not change what --help prints (click caches help options)."""
    before = cli_reference_markdown(cli)
    for ctx in CONTEXTS:
        bad_examples(cli, ctx)
    assert cli_reference_markdown(cli) == before


def test_docs_cli_md_matches_the_code():
    """Compared with what `splitplan docs cli` prints in a fresh process: help texts generated in this
    one could carry click's cached help options from whichever test first built a context."""
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "splitplan.cli.main", "docs", "cli"], capture_output=True,
                            text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    generated = result.stdout
    current = (ROOT / "docs" / "cli.md").read_text()
    assert current == generated, "docs/cli.md is out of date: run `splitplan docs cli --out docs/cli.md`"


def test_cli_reference_lists_every_command():
    text = cli_reference_markdown(cli)
    for ctx in CONTEXTS:
        assert f"## {ctx.command_path}\n" in text
