"""Datasheet peaks and the model shapes the GPU microbenchmarks sweep (benchmarks/gpu/kernels.py)."""
from __future__ import annotations

# Datasheet numbers (H200 SXM), only used for the derived efficiency columns.
PEAK_BF16 = 989e12
PEAK_FP8 = 1979e12
HBM_BW = 4.8e12

MODELS = {
    "llama3.1-8b": dict(hidden=4096, heads=32, kv_heads=8, head_dim=128, ffn=14336, vocab=128256),
    "llama3.1-70b": dict(hidden=8192, heads=64, kv_heads=8, head_dim=128, ffn=28672, vocab=128256),
    "qwen3-32b": dict(hidden=5120, heads=64, kv_heads=8, head_dim=128, ffn=25600, vocab=151936),
}
M_LIST = [1, 2, 4, 8, 16, 32, 64, 128, 256, 384, 512, 768, 1024, 1536, 2048, 3072, 4096, 8192,
          16384]
MOE_MODELS = {
    "qwen3-235b-a22b": dict(hidden=4096, ffn=1536, experts=128, topk=8),
    "qwen3-30b-a3b": dict(hidden=2048, ffn=768, experts=128, topk=8),
    "gpt-oss-120b": dict(hidden=2880, ffn=2880, experts=128, topk=4),
    "mixtral-8x7b": dict(hidden=4096, ffn=14336, experts=8, topk=2),
}
# Sharded variants: "-tpN" splits every expert's ffn N ways (all experts local); "-epN" keeps whole
# experts but only experts/N of them are local (tokens routed to the others are not computed here).
MOE_SHARDED = {
    "qwen3-235b-a22b-tp8": dict(hidden=4096, ffn=192, experts=128, topk=8),
    "qwen3-235b-a22b-ep8": dict(hidden=4096, ffn=1536, experts=128, topk=8, local=16),
    "qwen3-30b-a3b-tp4": dict(hidden=2048, ffn=192, experts=128, topk=8),
    "gpt-oss-120b-tp4": dict(hidden=2880, ffn=720, experts=128, topk=4),
    "mixtral-8x7b-tp8": dict(hidden=4096, ffn=1792, experts=8, topk=2),
}
