"""The H200 kernel measurements and their fitted parameters (profiles/measured/h200-kernels) are
consistent: every fitted parameter lies inside its bounds and carries held-out errors, and the bf16
GEMM fit is reproduced from the committed CSV by benchmarks/gpu/fit_kernels.py."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "profiles" / "measured" / "h200-kernels"


def _params(node):
    """Yield every parameter block (a dict with value/bounds/meaning) in fit.yaml."""
    if isinstance(node, dict):
        if {"value", "bounds", "meaning"} <= node.keys():
            yield node
        else:
            for v in node.values():
                yield from _params(v)


def test_fit_yaml_parameters_are_bounded_and_documented():
    fit = yaml.safe_load((DATA / "fit.yaml").read_text())
    blocks = list(_params(fit))
    assert len(blocks) >= 40
    for b in blocks:
        lo, hi = b["bounds"]
        assert lo <= b["value"] <= hi
        assert b["meaning"] and b["data"]
        assert b["heldout_mape"] and all(v is None or 0 <= v < 5 for v in b["heldout_mape"].values())


def test_gemm_bf16_fit_reproduces():
    spec = importlib.util.spec_from_file_location("fit_kernels",
                                                  ROOT / "benchmarks" / "gpu" / "fit_kernels.py")
    fk = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("fit_kernels", fk)  # dataclasses look their module up there
    spec.loader.exec_module(fk)
    g = pd.read_csv(DATA / "gemm.csv")
    d = g[g.dtype == "bf16"].reset_index(drop=True)
    d["peak"] = fk.PEAK["bf16"]
    form = fk.smooth_roofline()
    p = fk.fit_form(form, d)
    fit = yaml.safe_load((DATA / "fit.yaml").read_text())["gemm"]["bf16"]["params"]
    for i, name in enumerate(form.params):
        assert p[i] == pytest.approx(fit[name]["value"], rel=2e-3)
    assert fk.errs(form.predict(p, d), d.time_us)["mape"] < 0.08
