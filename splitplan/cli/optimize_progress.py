"""What `splitplan optimize` shows while it works, on a terminal and off one.

A run of minutes must never look hung. On a terminal: one live line with the design and the
simulation running now, the designs finished and the elapsed time. Off a terminal (stderr redirected
to a log, CI): plain lines, one when a design starts or finishes, and a heartbeat every few seconds
naming what is being simulated and for how long, so a log shows where the time goes.
"""

from __future__ import annotations

import os
import threading
import time
from typing import TextIO

from rich.console import Console
from rich.progress import Progress, TextColumn, TimeElapsedColumn

from splitplan.plan.progress import Event, EventKind

# off a terminal: a line at least this often while a simulation runs (SPLITPLAN_PROGRESS_EVERY_S overrides)
HEARTBEAT_S = 5.0


def heartbeat_s() -> float:
    try:
        return max(0.1, float(os.environ.get("SPLITPLAN_PROGRESS_EVERY_S", HEARTBEAT_S)))
    except ValueError:
        return HEARTBEAT_S


class OptimizeProgress:
    """Receives optimizer events (any thread) and shows them; use as a context manager."""

    def __init__(self, console: Console, designs: int, *, enabled: bool = True, heartbeat_s: float | None = None,
                 stream: TextIO | None = None):
        self.console, self.designs, self.enabled = console, designs, enabled
        self.live = enabled and console.is_terminal
        self.heartbeat_s = heartbeat_s if heartbeat_s is not None else globals()["heartbeat_s"]()
        self.stream = stream or console.file
        self.start = time.monotonic()
        self.done = 0
        self.started = False  # no event yet (inputs are still being checked)
        self.now = "starting"  # what is being simulated, as last reported
        self.since = self.start  # when `now` began
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.bar: Progress | None = None
        self.task = None
        self.thread: threading.Thread | None = None

    def __enter__(self) -> OptimizeProgress:
        if not self.enabled:
            return self
        if self.live:
            self.bar = Progress(TextColumn("{task.description}"), TimeElapsedColumn(), console=self.console,
                                transient=True)
            self.bar.__enter__()
            self.task = self.bar.add_task(self._line(), total=None)
        else:  # the first line waits for the first event: bad input must stay a single error line
            self.thread = threading.Thread(target=self._beat, name="splitplan-heartbeat", daemon=True)
            self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join(timeout=1.0)
        if self.bar is not None:
            self.bar.__exit__(None, None, None)

    def __call__(self, event: Event) -> None:
        if not self.enabled:
            return
        with self.lock:
            if not self.started:
                self.started = True
                if not self.live:
                    self._print(f"optimizing {self.designs} design(s)")
            where = f"{event.design}: " if event.design else ""
            if event.kind is EventKind.DESIGN_DONE:
                self.done += 1
                self._say(f"finished {event.text} ({self.done}/{self.designs} designs)", always=True)
                return
            self.now, self.since = where + event.text, time.monotonic()
            if event.kind is EventKind.STAGE and event.text.startswith("capacity model") and not self.live:
                self._print(f"{where}started")
            self._refresh()

    def _line(self) -> str:
        return f"[{self.done}/{self.designs} designs] {self.now}"

    def _refresh(self) -> None:
        if self.bar is not None and self.task is not None:
            self.bar.update(self.task, description=self._line())

    def _say(self, text: str, always: bool = False) -> None:
        if self.bar is not None:
            self.bar.console.print(f"{self._clock()} {text}", highlight=False)
            self._refresh()
        elif always or not self.live:
            self._print(text)

    def _clock(self) -> str:
        return f"[{time.monotonic() - self.start:6.0f} s]"

    def _print(self, text: str) -> None:
        print(f"{self._clock()} {text}", file=self.stream, flush=True)

    def _beat(self) -> None:
        """Off a terminal: what runs now, every heartbeat_s."""
        while not self.stop.wait(self.heartbeat_s):
            with self.lock:
                if not self.started:
                    continue
                running = time.monotonic() - self.since
                self._print(f"{self.now} ({running:.0f} s so far; {self.done}/{self.designs} designs finished)")
