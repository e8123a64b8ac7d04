"""Progress events of an optimize run, from whichever process runs the simulation.

A long optimize must say what it is doing: which design, which candidate, which simulation. Searches
run in the parent or in forked worker processes (a design per worker, or candidates spread over
workers), so events are emitted through a process-wide reporter: in the process that installed it they
go straight to its callback; in a forked worker they travel through a queue created before the fork
and are delivered by a thread of the parent. A design finished in a worker also travels this way, so
that an interrupted run keeps the designs that finished (their futures are cancelled with the pool).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import queue as queue_module
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import Enum
from typing import Any


class EventKind(str, Enum):
    STAGE = "stage"  # a design's search moved on (capacity model, calibration, refinement, ...)
    SIMULATION = "simulation"  # one simulation starts: cluster, rate, seed
    DESIGN_DONE = "design_done"  # a design's search ended; payload (index, DesignResult)


@dataclass(frozen=True)
class Event:
    kind: EventKind
    design: str  # "" when the emitting process does not know (a candidate worker)
    text: str
    payload: Any = None


Callback = Callable[[Event], None]


class _Reporter:
    def __init__(self, callback: Callback, channel: Any | None):
        self.owner_pid = os.getpid()
        self.callback = callback
        self.channel = channel  # a fork-context queue, or None (no worker can report)


_REPORTER: _Reporter | None = None
_DESIGN: tuple[int, str] = (0, "")  # (pid that set it, design being searched there)


def set_design(name: str) -> None:
    """The design this process searches now (forked workers inherit a stale one; the pid tells)."""
    global _DESIGN
    _DESIGN = (os.getpid(), name)


def current_design() -> str:
    pid, name = _DESIGN
    return name if pid == os.getpid() else ""


def emit(kind: EventKind, text: str, payload: Any = None) -> None:
    """Report one event; silently nothing when no reporter is installed (library use, tests)."""
    reporter = _REPORTER
    if reporter is None:
        return
    event = Event(kind, current_design(), text, payload)
    if os.getpid() == reporter.owner_pid:
        reporter.callback(event)
    elif reporter.channel is not None:
        with contextlib.suppress(Exception):  # a closed queue (run ending) must not fail a simulation
            reporter.channel.put(event)


def note_simulation(cluster: Any, rate_rps: float, seed: int) -> None:
    emit(EventKind.SIMULATION, f"{cluster.label()} at {rate_rps:.2f} req/s, seed {seed}")


@contextlib.contextmanager
def reporting(callback: Callback | None, workers: bool) -> Iterator[None]:
    """Install `callback` for the duration; with `workers`, also listen to forked worker processes.

    The queue must exist before the workers fork (they inherit it), so enter this before the first
    simulation is handed to a worker pool."""
    global _REPORTER
    if callback is None:
        yield
        return
    channel = None
    if workers and "fork" in multiprocessing.get_all_start_methods():
        channel = multiprocessing.get_context("fork").Queue()
    previous, _REPORTER = _REPORTER, _Reporter(callback, channel)
    thread = None
    if channel is not None:
        thread = threading.Thread(target=_deliver, args=(channel, callback), name="splitplan-progress", daemon=True)
        thread.start()
    try:
        yield
    finally:
        _REPORTER = previous
        if channel is not None and thread is not None:
            channel.put(None)
            thread.join(timeout=2.0)
            channel.close()
            channel.cancel_join_thread()


def _deliver(channel: Any, callback: Callback) -> None:
    """Hand worker events to the callback until the end marker."""
    while True:
        try:
            event = channel.get(timeout=0.5)
        except queue_module.Empty:
            continue
        except (EOFError, OSError):
            return
        if event is None:
            return
        with contextlib.suppress(Exception):  # a display error must not stop the delivery of results
            callback(event)
