"""Options that supply what a benchmark result file does not record (for commands reading results).

A command that reads measured-serving rows with `read_results` decorates itself with `result_options()`
(`skip=` the fields it already has options for) and passes `given_fields(kwargs)` on: `read_results(path, **given_fields(kwargs))`. The option names
are the ones read_results' errors tell the user to pass (serving_results.OPTION).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

# (field, option, type, help)
FIELDS = (
    ("model", "--model", str, "Model (Hugging Face id or catalog name) when the results do not name it."),
    ("gpu", "--gpu", str, "GPU the results were measured on (catalog name, e.g. h100-80gb)."),
    ("engine", "--engine", str, "Serving engine (vllm, sglang, trtllm) when the results do not name it."),
    ("engine_version", "--engine-version", str, "Engine version the results were measured with."),
    ("weights", "--weights", str, "Weight format of the measured runs (bf16, fp8, ...)."),
    ("tp", "--tp", int, "Tensor parallelism of the measured instances."),
    ("isl", "--isl", int, "Input length (tokens) when the results do not record it."),
    ("osl", "--osl", int, "Output length (tokens) when the results do not record it."),
    ("concurrency", "--concurrency", int, "Concurrent clients when the results do not record it."),
)
PREFIX = "result_"  # keyword names in the command function, so they never clash with its own options


def result_options(skip: tuple[str, ...] = ()) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator adding the options; `skip` names fields whose option the command already has (its own
    --tp, say), which it then passes to read_results itself."""
    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        for field, option, kind, help_text in reversed(FIELDS):
            if field not in skip:
                fn = click.option(option, f"{PREFIX}{field}", type=kind, default=None, help=help_text)(fn)
        return fn
    return decorate


def given_fields(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The read_results keywords among a command's arguments (pops them from `kwargs`)."""
    return {f: v for f, *_ in FIELDS if (v := kwargs.pop(f"{PREFIX}{f}", None)) is not None}
