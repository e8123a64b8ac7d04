"""Simulation tasks as Ray tasks: the same `map` as the local pool, spread over a Ray cluster.

Why Ray: a sweep is tens to hundreds of optimizations, more than one machine's cores finish in a
working session, and Ray schedules plain Python functions over many machines with no service of our
own to run. Only `map` is used: every task is a module-level function of picklable arguments whose
result does not depend on where it ran, and results are returned in submission order, so a Ray run
writes the same bytes as `--workers N` locally. Ray is optional (`pip install 'splitplan[ray]'`) and
imported only here. docs/distributed.md says how to point it at a cluster.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from typing import Any

from splitplan.errors import SplitplanError

WAIT_S = 0.2  # short waits, so that Ctrl-C reaches the driver while tasks run


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise SplitplanError("--executor ray needs Ray: pip install 'splitplan[ray]'", field="--executor") from None
    return ray


class RayBackend:
    """A connection to a Ray cluster (started locally when no address is given)."""

    _connected: RayBackend | None = None

    def __init__(self, ray: Any):
        self.ray = ray
        self._remote: dict[Callable[..., Any], Any] = {}

    @classmethod
    def connect(cls, address: str | None = None) -> RayBackend:
        """Join `address` (or reuse the Ray instance this process already started or joined)."""
        ray = _ray()
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"address": address, "log_to_driver": False, "logging_level": logging.WARNING}
            if address is None:  # a local instance: no dashboard, this machine's cores
                kwargs.update(include_dashboard=False, num_cpus=os.cpu_count() or 1)
            try:
                ray.init(**kwargs)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise SplitplanError(f"cannot connect to Ray at {address or 'a new local instance'}: "
                                     f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}",
                                     field="--address") from None
        if cls._connected is None or cls._connected.ray is not ray:
            cls._connected = cls(ray)
        return cls._connected

    def cpus(self) -> int:
        return max(1, int(self.ray.cluster_resources().get("CPU", 1)))

    def map(self, fn: Callable[..., Any], tasks: Sequence[tuple], finished: Callable[[int, Any], None]) -> list:
        """Run fn(*task) for every task as Ray tasks; results in task order, `finished` as each ends.

        Arguments shared by several tasks (the Problem: catalog, trace) are put in Ray's object store
        once instead of being serialised with every task."""
        ray = self.ray
        remote = self._remote.get(fn)
        if remote is None:
            remote = self._remote[fn] = ray.remote(fn)
        uses: dict[int, int] = {}
        for task in tasks:
            for arg in task:
                uses[id(arg)] = uses.get(id(arg), 0) + 1
        shared: dict[int, Any] = {}
        refs = []
        for task in tasks:
            args = []
            for arg in task:
                if uses[id(arg)] > 1 and _worth_sharing(arg):
                    if id(arg) not in shared:
                        shared[id(arg)] = ray.put(arg)
                    arg = shared[id(arg)]
                args.append(arg)
            refs.append(remote.remote(*args))
        index = {ref: i for i, ref in enumerate(refs)}
        results: list[Any] = [None] * len(refs)
        pending = list(refs)
        try:
            while pending:
                done, pending = ray.wait(pending, num_returns=len(pending), timeout=WAIT_S, fetch_local=True)
                for ref in sorted(done, key=index.__getitem__):
                    results[index[ref]] = ray.get(ref)
                    finished(index[ref], results[index[ref]])
        except BaseException:
            for ref in pending:
                ray.cancel(ref, force=True)
            raise
        return results


def _worth_sharing(arg: Any) -> bool:
    """Reused objects (not numbers, strings or tuples) go to the object store once."""
    return not isinstance(arg, (int, float, str, bool, type(None), tuple))
