"""What a comparison of designs rests on: one line per reason a reader should weigh the answer.

A recommendation between designs means what it says only when the designs' numbers come from the same
software and from fitted data: a plan that compares an H100 on a calibrated stack with a B200 on an
architecture the stack never saw is comparing a measurement with a guess. Each line names the designs
and the cause; optimize and simulate print them, plan.json keeps them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from splitplan.serving.kernels import gpu_arch
from splitplan.serving.stack import get_stack

if TYPE_CHECKING:
    from splitplan.plan.problem import Problem


def stack_warnings(problem: Problem) -> list[str]:
    """Mixed stacks, uncalibrated stacks, and architectures a stack was not fitted on."""
    sc = problem.scenario
    stacks = {d.name: get_stack(problem.perf_for(d).stack) for d in sc.designs}
    lines = []
    if problem.perf.backend == "profile":
        return lines
    names = sorted({s.name for s in stacks.values()})
    if len(names) > 1:
        per = ", ".join(f"{d} on {s.name}" for d, s in stacks.items())
        lines.append(f"designs rest on different serving stacks ({per}): they differ in software, not only hardware")
    for role, own in sc.serving.roles:
        if own.stack and any(role in d.pools() and get_stack(own.stack).name != stacks[d.name].name
                             for d in sc.designs):
            lines.append(f"the {role} pools run stack {get_stack(own.stack).name} (serving.{role}.stack), "
                         "the other pools their design's: one plan mixes engines")
    for stack in {s.name: s for s in stacks.values()}.values():
        if not stack.calibrated:
            users = ", ".join(d for d, s in stacks.items() if s.name == stack.name)
            lines.append(f"stack {stack.name} is not calibrated (spec defaults) for {users}")
    extrapolated: dict[str, set[str]] = {}
    for design in sc.designs:
        stack = stacks[design.name]
        if not stack.calibrated:
            continue
        for machines in design.pools().values():
            for name in machines:
                arch = gpu_arch(problem.catalog.gpu_of(name))
                if arch not in stack.fitted.archs:
                    extrapolated.setdefault(f"{stack.name} on {arch or 'unknown'} ({name})", set()).add(design.name)
    for what, designs in sorted(extrapolated.items()):
        lines.append(f"extrapolated: stack {what} was fitted on "
                     f"{', '.join(stacks[next(iter(designs))].fitted.archs)} only (used by {', '.join(sorted(designs))})")
    for stack in {s.name: s for s in stacks.values()}.values():
        lines += _length_notes(stack, problem.sizes.prompt_tokens, problem.sizes.output_tokens)
    return lines


def _length_notes(stack, prompt_tokens, output_tokens) -> list[str]:
    """Share of the trace's requests longer than any the stack was fitted on (shorter ones run into the
    kernel floors and host costs the fit did see, so only the long side is flagged)."""
    import numpy as np

    notes = []
    for key, values, what in (("isl", prompt_tokens, "prompts"), ("osl", output_tokens, "outputs")):
        bounds = stack.fitted.ranges.get(key)
        if not bounds or len(values) == 0:
            continue
        outside = float(np.mean(np.asarray(values) > bounds[1]))
        if outside >= 0.05:
            notes.append(f"extrapolated: {outside:.0%} of the trace's {what} are longer than the {bounds[1]:g} "
                         f"tokens stack {stack.name} was fitted on")
    return notes
