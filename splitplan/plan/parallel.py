"""Run candidate verifications on local cores or a Ray cluster, with results independent of either.

Each task is a pure function of (problem, cluster, hint): the seeds are fixed by the scenario, not by
the worker, and results come back in submission order, so 1 or N workers, local or Ray, give identical
plans. The executor is chosen once per command (`using_executor`), so the optimizer, check and sweep
code that builds `WorkerPool`s needs no executor argument; plan/ray_executor.py holds the Ray side.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

Task = tuple[Any, ...]
OnResult = Callable[[int, Any], None]  # (task index, result), as each task finishes
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
EXECUTORS = ("local", "ray")


@dataclass(frozen=True)
class ExecutorSpec:
    """Where simulations run: local worker processes, or Ray tasks (`address`: None starts a local Ray
    instance, "auto" joins the cluster this machine belongs to, "ray://host:10001" a remote one)."""

    kind: str = "local"
    address: str | None = None


_current = ExecutorSpec()


@contextlib.contextmanager
def using_executor(spec: ExecutorSpec) -> Iterator[None]:
    """Every WorkerPool created inside uses `spec` (a command sets this once around its work)."""
    global _current
    previous, _current = _current, spec
    try:
        yield
    finally:
        _current = previous


def current_executor() -> ExecutorSpec:
    return _current


def _init_worker(parent_pid: int) -> None:
    """Workers leave Ctrl-C to the parent, which cancels the search and cleans up; otherwise every
    worker idle on the task queue prints its own KeyboardInterrupt traceback. They also die with the
    parent: a worker forked while the parent was being interrupted is in no list the parent can
    terminate, and it would wait on the task queue forever, holding the parent's stdout and stderr."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    _die_with_parent(parent_pid)


def _die_with_parent(parent_pid: int) -> None:
    """Linux: ask the kernel to SIGKILL this process when its parent exits (prctl PR_SET_PDEATHSIG)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent_pid:  # the parent was already gone before the request took effect
        os._exit(0)


@contextlib.contextmanager
def _sigint_deferred() -> Iterator[None]:
    """Block SIGINT while workers are forked (they inherit the mask and unblock it only once they
    ignore it); a Ctrl-C that arrived meanwhile is delivered to the parent on leaving."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def default_workers() -> int:
    """min(2, cpus): verification is CPU-bound and the machine is often shared."""
    return max(1, min(2, os.cpu_count() or 1))


class WorkerPool:
    """A lazily started process pool (or Ray, see `using_executor`); `map` keeps task order and reports
    each finished task (`on_done()` for progress, `on_result(index, result)` to save it at once)."""

    def __init__(self, workers: int | None = None, executor: ExecutorSpec | None = None):
        spec = executor or _current
        self._ray = None
        if spec.kind == "ray" and workers != 1:  # a serial pool runs in this process: no cluster needed
            from splitplan.plan.ray_executor import RayBackend

            self._ray = RayBackend.connect(spec.address)
            self.workers = workers or self._ray.cpus()
        else:
            self.workers = workers or default_workers()
        self._pool: ProcessPoolExecutor | None = None

    def map(self, fn: Callable[..., Any], tasks: Sequence[Task], on_done: Callable[[], None] | None = None,
            on_result: OnResult | None = None) -> list:
        def finished(index: int, result: Any) -> None:
            if on_result:
                on_result(index, result)
            if on_done:
                on_done()

        if self.workers <= 1 or len(tasks) <= 1:
            out = []
            for i, task in enumerate(tasks):
                out.append(fn(*task))
                finished(i, out[-1])
            return out
        if self._ray is not None:
            return self._ray.map(fn, tasks, finished)
        futures: dict[Any, int] = {}
        results: list[Any] = [None] * len(tasks)
        try:
            with _sigint_deferred():  # workers fork here; none may see Ctrl-C before it ignores it
                if self._pool is None:
                    ctx = multiprocessing.get_context("fork") if os.name == "posix" else None
                    self._pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=ctx,
                                                     initializer=_init_worker, initargs=(os.getpid(),))
                futures = {self._pool.submit(fn, *task): i for i, task in enumerate(tasks)}
            pending = set(futures)
            while pending:
                # short timed waits: a Ctrl-C delivered to another thread (e.g. the progress bar's) only
                # runs its handler when the main thread executes again; an untimed wait would hold it
                # until a task finished, while the workers (ignoring SIGINT) kept computing
                done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                for fut in sorted(done, key=futures.__getitem__):
                    results[futures[fut]] = fut.result()
                    finished(futures[fut], results[futures[fut]])
        except BaseException:
            for fut in futures:
                fut.cancel()
            if not isinstance(sys.exc_info()[1], Exception):  # Ctrl-C: stop now, do not finish running tasks
                self._terminate()
            raise
        return results

    def _terminate(self) -> None:
        """Kill the workers (they ignore SIGINT) so an interrupted search exits at once."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        for process in list(getattr(pool, "_processes", {}).values()):  # no public API before Python 3.14
            process.terminate()
        pool.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
