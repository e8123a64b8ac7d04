"""A click group whose commands are imported only when used, so `splitplan --help` and light commands
start without loading what heavy commands need (numpy, scipy, pandas, PuLP, matplotlib).

The table of commands lives in cli/main.py (`COMMANDS`): name -> `LazyCommand(target, summary)`.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import click


@dataclass(frozen=True)
class LazyCommand:
    """Where a command lives, and the one line `splitplan --help` lists for it.

    target: "package.module:attribute", the click command object.
    summary: the first sentence of the command's docstring (what click would show); kept here so the
    group's help does not import the command. tests/test_startup.py checks the two agree.
    """

    target: str
    summary: str


class LazyGroup(click.Group):
    """A click.Group that imports each command's module on first `get_command` (when the command is
    invoked, its help is shown, or shell completion reaches it) and lists summaries from its table."""

    def __init__(self, *args: Any, lazy_commands: Mapping[str, LazyCommand] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands: dict[str, LazyCommand] = dict(lazy_commands or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *self.lazy_commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy_commands:
            self.add_command(load_command(self.lazy_commands[cmd_name].target), cmd_name)
        return self.commands.get(cmd_name)

    def resolve_command(self, ctx: click.Context, args: list[str]) -> tuple[str | None, click.Command | None, list[str]]:
        """As click's, but "Did you mean ...?" draws on every command, not just those already imported."""
        try:
            return super().resolve_command(ctx, args)
        except click.UsageError as exc:
            no_such_command = getattr(click.exceptions, "NoSuchCommand", None)  # click >= 8.4 suggests names
            if no_such_command is None or not isinstance(exc, no_such_command):
                raise
            raise no_such_command(exc.command_name, possibilities=self.list_commands(ctx), ctx=ctx) from None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """click's own listing, except that a lazy command is shown by its summary, unimported."""
        rows: list[tuple[str, click.Command]] = []
        for name in self.list_commands(ctx):
            if name in self.lazy_commands:  # a stand-in: click shortens its help exactly as the real one's
                command: click.Command | None = click.Command(name, help=self.lazy_commands[name].summary)
            else:
                command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command))
        if rows:
            limit = formatter.width - 6 - max(len(name) for name, _ in rows)
            with formatter.section("Commands"):
                formatter.write_dl([(name, command.get_short_help_str(limit)) for name, command in rows])


def load_command(target: str) -> click.Command:
    """Import "package.module:attribute" and return that click command."""
    module_name, _, attribute = target.partition(":")
    command = getattr(importlib.import_module(module_name), attribute)
    if not isinstance(command, click.Command):
        raise TypeError(f"{target} is not a click command (got {type(command).__name__})")
    return command
