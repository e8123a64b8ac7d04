"""Verdicts of simulations already run, kept on disk and shared between optimizations: the points of a
sweep, the studies of one `check` run, and `optimize --sim-memo DIR` asked again.

Why: the points of a sweep simulate many of the same clusters at the same rates and seeds (a design
that meets a machine-count cap at one budget searches the same clusters at every larger one; the
pool calibrations repeat), and a simulation costs from a tenth of a second to a minute. A run's
verdict is a pure function of its inputs, so it is stored under a digest of all of them and read back
instead of simulated again: every table and plan is the same bytes as without the memo.

The key is a BLAKE2b digest of
- the code and bundled data (every `.py` of the package, every file under the bundled profiles) and
  the Python and numpy versions, so an edited checkout or another release never reads a stale verdict;
- the problem: the trace's sizes, run length, perf settings, catalog, simulator settings and SLOs,
  and the contents of any stack or profile file the perf settings name;
- the cluster (its pools, shapes, stacks and scheduling, and the contents of stack files it names),
  the seed, the lattice rate and whether the run may stop at its first certain SLO miss.

Entries are small JSON files (`<folder>/<2 hex>/<digest>.json`), written atomically (temporary file,
then rename), so processes and a resumed run share them safely. The memo never fails a search: an
unreadable, truncated or foreign entry is simulated again, an unwritable folder simply stores nothing.
"""

from __future__ import annotations

import functools
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from splitplan.atomic_io import write_atomic

try:  # the hash alone: hashlib would also load OpenSSL's _hashlib
    from _blake2 import blake2b
except ImportError:  # an interpreter without CPython's private module
    from hashlib import blake2b

MEMO_FORMAT = "splitplan-sim-memo/1"  # part of every key: bump when what is stored changes
_DATA_SUFFIXES = (".py", ".yaml", ".yml", ".csv", ".json")


@functools.cache
def code_digest() -> str:
    """Digest of the package's sources and bundled data (computed once per process, ~5 ms)."""
    import numpy

    import splitplan
    from splitplan.resources import bundled_profiles_dir

    # the interpreter and numpy too: the workloads' random streams and float sums come from them
    h = blake2b(f"{MEMO_FORMAT}|{sys.version}|numpy {numpy.__version__}".encode(), digest_size=20)
    # the sources, then the profiles' data; not the bundled scenarios and traces (a wheel carries them
    # inside the package): a trace enters each key through the sizes the problem read from it
    for root, suffixes in ((Path(splitplan.__file__).resolve().parent, (".py",)),
                           (bundled_profiles_dir(), _DATA_SUFFIXES)):
        for path in sorted(p for p in root.rglob("*") if p.suffix in suffixes and p.is_file()):
            h.update(str(path.relative_to(root)).encode() + b"\0")
            h.update(path.read_bytes())
    return h.hexdigest()


def _file_contents(name: str | None) -> str:
    """A digest of the file `name` names, if it is one (a stack or profile given by path), else ''."""
    if not name:
        return ""
    path = Path(name).expanduser()
    try:
        return blake2b(path.read_bytes(), digest_size=20).hexdigest() if path.is_file() else ""
    except OSError:
        return ""


@dataclass(frozen=True)
class SimMemo:
    """The memo folder, bound to one problem's digest (picklable: worker processes and Ray tasks carry it)."""

    folder: str
    problem_digest: str

    @classmethod
    def for_problem(cls, folder: str | Path, problem: Any) -> SimMemo:
        from splitplan.plan.verify import sim_config

        p = problem
        h = blake2b(code_digest().encode(), digest_size=20)
        for part in (p.sizes.prompt_tokens.tobytes(), p.sizes.output_tokens.tobytes(),
                     repr((p.scenario.workload.duration_s, p.perf, sim_config(p), p.slos, p.catalog)).encode(),
                     _file_contents(p.perf.stack).encode(), _file_contents(p.perf.profile_path).encode()):
            h.update(len(part).to_bytes(8, "little"))
            h.update(part)
        return cls(str(folder), h.hexdigest())

    def key(self, cluster: Any, seed: int, k: int, stop_at_miss: bool) -> str:
        files = [_file_contents(cluster.stack)] + [_file_contents(pool.stack) for pool in cluster.pools]
        text = repr((self.problem_digest, cluster, files, seed, k, stop_at_miss))
        return blake2b(text.encode(), digest_size=20).hexdigest()

    def _path(self, key: str) -> Path:
        return Path(self.folder) / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored fields of a run, or None (absent, torn or not ours: simulate again)."""
        try:
            record = json.loads(self._path(key).read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(record, dict) or record.get("key") != key or not isinstance(record.get("run"), dict):
            return None
        return record["run"]

    def put(self, key: str, run: dict[str, Any]) -> None:
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(path, json.dumps({"key": key, "run": run}, sort_keys=True))
        except OSError:  # an unwritable folder stores nothing; the search goes on
            pass
