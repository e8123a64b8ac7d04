"""`splitplan docs cli`: the CLI reference (docs/cli.md) generated from the click commands themselves.

Generated, not hand-written, so it cannot drift: a test regenerates it and compares with the file.
Help is rendered at a fixed width so the output does not depend on the terminal that runs it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import click

from splitplan.errors import SplitplanError

HELP_WIDTH = 100
HEADER = """# splitplan command-line reference

Generated from the code by `splitplan docs cli --out docs/cli.md`; do not edit by hand (a test checks
that this file matches the commands). Every command also prints this with `--help`. User errors print
one line `error: <file>: <field>: <problem>` and exit with status 2.
"""


def walk_commands(group: click.Group, parent: click.Context | None = None,
                  name: str = "splitplan") -> Iterator[click.Context]:
    """A context for the group and for every command under it, depth-first in name order.

    Contexts chain to their parent, as when the user types the command, so inherited settings (e.g.
    `-h` as a help option) and the full command path show up in the help exactly as in a terminal."""
    settings = {**group.context_settings, "terminal_width": HELP_WIDTH, "max_content_width": HELP_WIDTH}
    ctx = click.Context(group, info_name=name, parent=parent, **settings)
    yield ctx
    for sub_name in sorted(group.list_commands(ctx)):
        command = group.get_command(ctx, sub_name)
        if command is None or command.hidden:
            continue
        if isinstance(command, click.Group):
            yield from walk_commands(command, ctx, sub_name)
        else:
            yield click.Context(command, info_name=sub_name, parent=ctx, **command.context_settings)


def cli_reference_markdown(group: click.Group) -> str:
    """Markdown: a command index, then each command's help in a code block."""
    contexts = list(walk_commands(group))
    index = "\n".join(f"- [`{c.command_path}`](#{_anchor(c.command_path)}): {_first_line(c.command)}"
                      for c in contexts[1:])
    parts = [HEADER, "## Commands\n", index, ""]
    for ctx in contexts:
        parts += [f"## {ctx.command_path}\n", "```", ctx.get_help().rstrip(), "```", ""]
    return "\n".join(parts)


def _first_line(command: click.Command) -> str:
    return command.get_short_help_str(limit=90)


def _anchor(name: str) -> str:
    """GitHub's heading anchor for '## splitplan optimize' is 'splitplan-optimize'."""
    return name.lower().replace(" ", "-")


@click.group("docs")
def docs_group() -> None:
    """Generate documentation from the code.

    \b
    Examples:
      splitplan docs cli --out docs/cli.md
      splitplan docs cli --check docs/cli.md
    """


@docs_group.command("cli")
@click.option("--out", "out_path", type=click.Path(dir_okay=False), default=None,
              help="Write the reference to this file (default: print it).")
@click.option("--check", "check_path", type=click.Path(dir_okay=False), default=None,
              help="Exit 1 if this file differs from the generated reference (for CI).")
def docs_cli_command(out_path: str | None, check_path: str | None) -> None:
    """The CLI reference in Markdown: every command's --help, generated from the code.

    \b
    Examples:
      splitplan docs cli > docs/cli.md
      splitplan docs cli --out docs/cli.md
      splitplan docs cli --check docs/cli.md
    """
    from splitplan.cli.main import cli

    text = cli_reference_markdown(cli)
    if check_path:
        path = Path(check_path)
        if not path.is_file():
            raise SplitplanError("file not found", source=check_path)
        if path.read_text() != text:
            click.echo(f"{check_path} is out of date: run `splitplan docs cli --out {check_path}`", err=True)
            raise SystemExit(1)
        click.echo(f"{check_path} is up to date")
        return
    if out_path:
        Path(out_path).write_text(text)
        click.echo(f"wrote {out_path}")
        return
    click.echo(text, nl=False)
