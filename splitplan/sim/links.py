"""KV-cache transfer between a prompt and a token instance, over the machines' NICs.

Each physical machine has one scale-out NIC (catalog `nic_gbps`). A transfer occupies the source and
destination NICs for its wire time; one that finds either busy waits until both are free (FIFO link
contention), and its exposed delay grows by the wait.
Under SplitwiseSim compatibility the transfer is serialized after the prompt at a fixed 200 GiB/s with
no contention, as SplitwiseSim models it.
"""

from __future__ import annotations

from collections.abc import Callable

from splitplan.catalog import Machine


class Links:
    """Transfer times and NIC occupancy for one simulation."""

    __slots__ = ("nic_free_s", "_time_ms", "compat_bytes_per_s", "layerwise", "layerwise_min_tokens", "layers",
                 "_cache")

    def __init__(self, n_machines: int, *, compat_gibps: float | None, layerwise: bool,
                 layerwise_min_tokens: int, layers: int,
                 transfer_ms: Callable[..., float] | None = None):
        self.nic_free_s = [0.0] * n_machines
        self._time_ms = transfer_ms
        self.compat_bytes_per_s = compat_gibps * 1024**3 if compat_gibps else 0.0
        self.layerwise = layerwise
        self.layerwise_min_tokens = layerwise_min_tokens
        self.layers = layers
        self._cache: dict[tuple, tuple[float, float]] = {}  # (bytes, prefill, src, dst) -> (exposed, wire)

    def start(self, now_s: float, kv_bytes: float, prompt_tokens: int, prefill_s: float,
              src_machine: Machine, src_idx: int, dst_machine: Machine, dst_idx: int) -> float:
        """Begin a transfer at `now_s` (prompt completion); returns when the KV cache has arrived."""
        if self.compat_bytes_per_s:
            return now_s + kv_bytes / self.compat_bytes_per_s
        if src_idx == dst_idx:  # same machine: the cache is already there (NVLink copy ignored)
            return now_s
        key = (kv_bytes, prefill_s, src_machine.name, dst_machine.name)
        times = self._cache.get(key)
        if times is None:
            mode = "layerwise" if self.layerwise and prompt_tokens >= self.layerwise_min_tokens else "serialized"
            exposed_s = self._time_ms(kv_bytes, src_machine, dst_machine, mode=mode, prefill_ms=prefill_s * 1000.0,
                                      layers=self.layers) / 1000.0
            # The NICs carry the whole cache (its serialized wire time); layer-wise streaming started
            # during the prefill, so uncontended it ends `exposed_s` after the prompt. A busy NIC delays it.
            wire_s = self._time_ms(kv_bytes, src_machine, dst_machine, mode="serialized") / 1000.0
            if len(self._cache) > 100_000:  # batched prefills make unique keys: keep memory bounded
                self._cache.clear()
            times = self._cache[key] = (exposed_s, wire_s)
        exposed_s, wire_s = times
        nic = self.nic_free_s
        begin = max(now_s + exposed_s - wire_s, nic[src_idx], nic[dst_idx])
        end = begin + wire_s
        nic[src_idx] = end
        nic[dst_idx] = end
        return max(end, now_s + exposed_s)
