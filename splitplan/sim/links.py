"""KV-cache transfer between a prompt and a token instance, over the machines' NICs.

Each physical machine has one scale-out NIC (catalog `nic_gbps`). A transfer occupies the source and
destination NICs for its wire time; one that finds either busy waits until both are free (FIFO link
contention), and its exposed delay grows by the wait.
Under SplitwiseSim compatibility the transfer is serialized after the prompt at a fixed 200 GiB/s with
no contention, as SplitwiseSim models it. Between workers of one machine (disaggregated prefill and
decode sharing an 8-GPU box) the cache moves over NVLink when `intra_gbps` is given (one GPU's link
per direction: conservative, the TP shards move in parallel), else instantly as before.
"""

from __future__ import annotations

from collections.abc import Callable

from splitplan.catalog import Machine

NVLINK_EFFICIENCY = 0.8  # achieved share of one GPU's NVLink bandwidth per direction for bulk copies
NVLINK_SETUP_S = 0.2e-3  # handshake of a same-machine KV move (NIXL/cudaMemcpyPeer), a fraction of a ms


class Links:
    """Transfer times and NIC occupancy for one simulation."""

    __slots__ = ("nic_free_s", "_time_ms", "compat_bytes_per_s", "layerwise", "layerwise_min_tokens", "layers",
                 "_cache", "intra_bytes_per_s")

    def __init__(self, n_machines: int, *, compat_gibps: float | None, layerwise: bool,
                 layerwise_min_tokens: int, layers: int,
                 transfer_ms: Callable[..., float] | None = None, intra_gbps: float = 0.0):
        self.nic_free_s = [0.0] * n_machines
        self._time_ms = transfer_ms
        self.compat_bytes_per_s = compat_gibps * 1024**3 if compat_gibps else 0.0
        self.layerwise = layerwise
        self.layerwise_min_tokens = layerwise_min_tokens
        self.layers = layers
        self._cache: dict[tuple, tuple[float, float]] = {}  # (bytes, prefill, src, dst) -> (exposed, wire)
        self.intra_bytes_per_s = intra_gbps * 1e9 * NVLINK_EFFICIENCY  # 0: a same-machine move is free

    def start(self, now_s: float, kv_bytes: float, prompt_tokens: int, prefill_s: float,
              src_machine: Machine, src_idx: int, dst_machine: Machine, dst_idx: int) -> float:
        """Begin a transfer at `now_s` (prompt completion); returns when the KV cache has arrived."""
        if self.compat_bytes_per_s:
            return now_s + kv_bytes / self.compat_bytes_per_s
        if src_idx == dst_idx:  # same machine: over NVLink (disaggregated workers sharing a machine)
            if not self.intra_bytes_per_s or kv_bytes <= 0:
                return now_s
            return now_s + NVLINK_SETUP_S + kv_bytes / self.intra_bytes_per_s
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
