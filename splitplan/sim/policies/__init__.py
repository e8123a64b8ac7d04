"""Batching policies: how one instance forms its next iteration, chosen by name from a registry.

The engine (sim/engine.py) owns time, events, requests and KV transfers; a policy only decides what
an instance runs next, through the engine's primitives (begin_prompts, begin_chunks, decode_run,
admit, preempt_*, idle). A new policy is a class registered here by name, not an edit of the engine:

    @register("my-policy")
    class MyPolicy(BatchPolicy):
        def start(self, eng, inst): ...

Bundled: "prompt_pool" and "token_pool" (Splitwise's split pools), "mixed" (SplitwiseSim's mixed
batching), "chunked" (vLLM v1 / Sarathi-Serve chunked prefill), "prefill_first" (SGLang's default:
prefill batches before decodes), "inflight" (TensorRT-LLM in-flight batching, whole prompts).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, ClassVar

from splitplan.errors import SplitplanError, nearest_names
from splitplan.serving.stack import Scheduling

if TYPE_CHECKING:
    from splitplan.sim.engine import Engine
    from splitplan.sim.machines import Inst


class BatchPolicy:
    """Forms an instance's iterations. Subclasses implement `start`."""

    name: ClassVar[str] = ""
    colocated: ClassVar[bool] = True  # serves both phases of a request on one instance

    def start(self, eng: Engine, inst: Inst) -> None:
        """Begin the instance's next segment (an iteration or a closed-form decode run), or idle it."""
        raise NotImplementedError


POLICIES: dict[str, type[BatchPolicy]] = {}
_DEFAULT = Scheduling()


def scheduling(inst: Inst) -> Scheduling:
    """The instance's batch limits and KV policy: its stack's on its GPU, after the deployment's
    overrides (one object read by every policy and by the capacity model)."""
    return inst.sched or _DEFAULT


def register(name: str) -> Callable[[type[BatchPolicy]], type[BatchPolicy]]:
    def add(cls: type[BatchPolicy]) -> type[BatchPolicy]:
        if name in POLICIES and POLICIES[name] is not cls:
            raise ValueError(f"batching policy '{name}' is registered twice")
        cls.name = name
        POLICIES[name] = cls
        return cls
    return add


def make_policy(name: str) -> BatchPolicy:
    _load_bundled()
    if name not in POLICIES:
        raise SplitplanError(f"unknown batching policy '{name}'{nearest_names(name, POLICIES)}", field="policy")
    return POLICIES[name]()


def policy_names() -> tuple[str, ...]:
    _load_bundled()
    return tuple(sorted(POLICIES))


def _load_bundled() -> None:
    from splitplan.sim.policies import (  # noqa: F401  (registers)
        chunked,
        inflight,
        mixed,
        pools,
        prefill_first,
        splitwisesim,
    )
