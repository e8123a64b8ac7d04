"""Benchmark results in: client outputs read into the measured-serving table (one row per run).

`read_results(path, **given)` returns the columns of profiles/measured/serving/h100.csv as strings (model,
gpu, engine, engine_version, mode, weights, moe_weights, isl, osl, concurrency, tp, pp, ep, attention_dp,
ttft_ms, tpot_ms; range_ratio and num_prompts where the file says them; source_id = the file) from:

- the table itself (CSV with a `model` column): read by benchmark_rows.read_rows, unchanged.
- `vllm bench serve --save-result` JSON (vllm/benchmarks/serve.py at commit def9ce8; the same keys as the
  older benchmarks/benchmark_serving.py): model_id, backend, num_prompts, max_concurrency, completed,
  total_input_tokens, total_output_tokens, mean_ttft_ms, mean_tpot_ms; input_lens/output_lens only with
  --save-detailed; `--metadata KEY=VALUE` pairs land as top-level keys (so `--metadata gpu=h100-80gb tp=8
  engine_version=0.11.0 weights=bf16` fills those columns); `--append-result` writes one JSON per line.
- AIPerf `profile_export_aiperf.json` (ai-dynamo/aiperf 0.x, aiperf/exporters/json_exporter.py at commit
  ec34766: metrics under "records" in newer versions, at the top level in older ones, each
  {"unit", "avg", "p50", ...} in display units, ms for times, which the exporter converts from its
  internal ns) with input_config.endpoint.model_names, input_config.loadgen.concurrency and
  input_config.input.prompt.{input_tokens,output_tokens}.{mean,stddev}; and its CSV
  (`profile_export_aiperf.csv`: "Metric,avg,..." rows such as "Time to First Token (ms)", a blank line,
  "Metric,Value" rows).
- GenAI-Perf `profile_export_genai_perf.json` (triton-inference-server/perf_analyzer genai-perf at commit
  4cc7650: metrics at the top level, times scaled from ns to ms and labelled "unit": "ms"; input_config is
  the command's arguments: model [list], concurrency, synthetic_input_tokens_mean/_stddev,
  output_tokens_mean/_stddev, request_count) and its CSV (export_data/csv_exporter.py: metric names in
  title case, "Time To First Token (ms)", no unit for token counts, values written f"{v:,.2f}").

TTFT is the mean time_to_first_token; TPOT the mean inter_token_latency (AIPerf and GenAI-Perf define it as
(request latency - TTFT) / (output tokens - 1), vLLM's TPOT), else 1000 / output_token_throughput_per_user.
Every time is converted from the unit the file names. A folder is searched for *.json (vLLM's
*.pytorch.json companions, AIPerf's inputs.json and perf_analyzer's profile_export.json are skipped); a
path with * ? [ is a glob. What a file lacks comes from `given` (the options --model, --gpu, --engine,
--engine-version, --weights, --tp, --isl, --osl, --concurrency); a required field found nowhere is a
one-line error naming the file, the field and the option.
"""

from __future__ import annotations

import csv
import glob
import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from splitplan.errors import SplitplanError

COLUMNS = ("model", "gpu", "engine", "engine_version", "mode", "weights", "moe_weights", "isl", "osl",
           "concurrency", "tp", "pp", "ep", "attention_dp", "ttft_ms", "tpot_ms")
OPTIONAL = ("range_ratio", "num_prompts")
DEFAULTS = {"mode": "agg", "pp": "1", "ep": "1", "attention_dp": "1"}
OPTION = {"model": "--model", "gpu": "--gpu", "engine": "--engine", "engine_version": "--engine-version",
          "weights": "--weights", "moe_weights": "--moe-weights", "tp": "--tp", "pp": "--pp", "ep": "--ep",
          "attention_dp": "--attention-dp", "mode": "--mode", "isl": "--isl", "osl": "--osl",
          "concurrency": "--concurrency", "range_ratio": "--range-ratio", "num_prompts": "--num-prompts"}
ENGINES = ("vllm", "sglang", "trtllm")
TO_MS = {"ms": 1.0, "msec": 1.0, "ns": 1e-6, "us": 1e-3, "µs": 1e-3, "s": 1e3, "sec": 1e3}
SKIP_NAMES = ("inputs.json", "profile_export.json")  # AIPerf's inputs; perf_analyzer's raw per-request export
MAX_FILES = 10_000


# ------------------------------------------------------------------------------------------ helpers
def _num(raw: Any) -> float | None:
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _text(value: Any) -> str:
    """A table cell: whole numbers without '.0', others to 8 significant digits."""
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else f"{value:.8g}"
    return str(value).strip()


def _ms(stat: dict, source: str, field: str) -> float | None:
    """A statistic's mean in ms, from the unit the file names."""
    value = _num(stat.get("avg"))
    if value is None:
        return None
    unit = str(stat.get("unit", "")).strip().lower()
    if unit not in TO_MS:
        raise SplitplanError(f"unit '{stat.get('unit')}' is not a time unit (ms, us, ns, s)", source=source, field=field)
    return value * TO_MS[unit]


def _get(data: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


# ------------------------------------------------------------------------------------------ formats
def _from_vllm(data: dict, source: str) -> dict[str, Any]:
    """One `vllm bench serve --save-result` record."""
    row: dict[str, Any] = {k: data[k] for k in (*COLUMNS, *OPTIONAL) if data.get(k) not in (None, "")}
    row.setdefault("model", data.get("model_id"))
    backend = str(data.get("backend") or data.get("endpoint_type") or "").lower()
    if backend in ENGINES:
        row.setdefault("engine", backend)
    row.setdefault("concurrency", data.get("max_concurrency"))
    row.setdefault("num_prompts", data.get("num_prompts"))
    row["ttft_ms"], row["tpot_ms"] = data.get("mean_ttft_ms"), data.get("mean_tpot_ms")
    completed = _num(data.get("completed"))
    for key, lens, total, nominal in (("isl", "input_lens", "total_input_tokens", "random_input_len"),
                                      ("osl", "output_lens", "total_output_tokens", "random_output_len")):
        if key in row:
            continue
        seen = [x for x in (data.get(lens) or []) if _num(x)]
        if _num(data.get(nominal)):
            row[key] = data[nominal]
            r = _num(data.get("random_range_ratio"))
            if r is not None and key == "isl" and "range_ratio" not in row:  # vLLM: uniform in [L(1-r), L(1+r)]
                row["isl"], row["range_ratio"] = round(data[nominal] * (1 + r)), (1 - r) / (1 + r)
        elif seen:  # --save-detailed: nominal = the longest, spread = shortest / longest
            row[key] = max(seen)
            if key == "isl" and "range_ratio" not in row:
                row["range_ratio"] = round(min(seen) / max(seen), 4)
        elif completed and _num(data.get(total)) is not None:
            row[key] = round(float(data[total]) / completed)  # the mean length
    return row


def _aiperf_metrics(data: dict) -> dict:
    records = data.get("records")
    return records if isinstance(records, dict) else data


def _from_profile_export(data: dict, source: str) -> dict[str, Any]:
    """AIPerf or GenAI-Perf JSON export."""
    metrics, cfg = _aiperf_metrics(data), data.get("input_config") or {}
    row: dict[str, Any] = {}
    ttft = metrics.get("time_to_first_token")
    row["ttft_ms"] = _ms(ttft, source, "time_to_first_token") if isinstance(ttft, dict) else None
    itl, per_user = metrics.get("inter_token_latency"), metrics.get("output_token_throughput_per_user")
    if isinstance(itl, dict):
        row["tpot_ms"] = _ms(itl, source, "inter_token_latency")
    elif isinstance(per_user, dict) and _num(per_user.get("avg")):
        row["tpot_ms"] = 1000.0 / float(per_user["avg"])
    prompt = _get(cfg, "input", "prompt") or {}
    models = _get(cfg, "endpoint", "model_names") or cfg.get("model")
    if isinstance(models, list) and models:
        row["model"] = models[0]
    elif isinstance(models, str):
        row["model"] = models
    conc = _get(cfg, "loadgen", "concurrency") or cfg.get("concurrency")
    if conc is not None:
        row["concurrency"] = conc
    for key, cfg_key, flat, metric in (("isl", "input_tokens", "synthetic_input_tokens", "input_sequence_length"),
                                       ("osl", "output_tokens", "output_tokens", "output_sequence_length")):
        mean = _num(_get(prompt, cfg_key, "mean")) or _num(cfg.get(f"{flat}_mean"))
        if mean:
            row[key] = mean
            stddev = _num(_get(prompt, cfg_key, "stddev")) or _num(cfg.get(f"{flat}_stddev")) or 0.0
            if key == "isl" and stddev == 0.0:
                row["range_ratio"] = 1.0  # every prompt exactly ISL long
        elif isinstance(metrics.get(metric), dict) and _num(metrics[metric].get("avg")):
            row[key] = round(float(metrics[metric]["avg"]))
    count = metrics.get("request_count")
    if isinstance(count, dict) and _num(count.get("avg")):
        row["num_prompts"] = count["avg"]
    elif _num(cfg.get("request_count")):
        row["num_prompts"] = cfg["request_count"]
    return row


def _from_export_csv(path: Path, source: str) -> dict[str, Any]:
    """AIPerf / GenAI-Perf CSV: 'Metric,avg,...' rows, then 'Metric,Value' rows; no run configuration."""
    stats: dict[str, dict] = {}
    with open(path, newline="", encoding="utf-8-sig") as f:
        header: list[str] = []
        for cells in csv.reader(f):
            if not cells or not any(c.strip() for c in cells):
                header = []
                continue
            if cells[0].strip().lower() == "metric":
                header = [c.strip().lower() for c in cells]
                continue
            if not header:
                continue
            name, _, unit = cells[0].partition("(")
            col = "avg" if "avg" in header else "value" if "value" in header else ""
            if col and header.index(col) < len(cells):
                value = cells[header.index(col)].replace(",", "")  # GenAI-Perf writes f"{value:,.2f}"
                stats[name.strip().lower()] = {"avg": value, "unit": unit.rstrip(") ").strip()}
    row: dict[str, Any] = {}
    if "time to first token" in stats:
        row["ttft_ms"] = _ms(stats["time to first token"], source, "Time to First Token")
    if "inter token latency" in stats:
        row["tpot_ms"] = _ms(stats["inter token latency"], source, "Inter Token Latency")
    for key, name in (("isl", "input sequence length"), ("osl", "output sequence length")):
        if name in stats and _num(stats[name]["avg"]):
            row[key] = round(float(stats[name]["avg"]))
    if "request count" in stats and _num(stats["request count"]["avg"]):
        row["num_prompts"] = stats["request count"]["avg"]
    return row


# ------------------------------------------------------------------------------------------ files
def _json_records(path: Path, source: str) -> list[Any]:
    """One JSON document, or several (vLLM --append-result: one per line)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SplitplanError(f"cannot read ({exc.__class__.__name__})", source=source) from None
    decoder, records, i = json.JSONDecoder(), [], 0
    while i < len(text):
        if text[i].isspace():
            i += 1
            continue
        try:
            obj, i = decoder.raw_decode(text, i)
        except ValueError:
            raise SplitplanError("not valid JSON", source=source) from None
        records.append(obj)
    if not records:
        raise SplitplanError("empty file", source=source)
    return records


def _kind(data: Any) -> str:
    if not isinstance(data, dict):
        return ""
    if "mean_ttft_ms" in data or ("model_id" in data and "max_concurrency" in data):
        return "vllm"
    if isinstance(_aiperf_metrics(data).get("time_to_first_token"), dict):
        return "profile_export"
    return ""


def _rows_of_file(path: Path) -> list[dict[str, Any]]:
    source = str(path)
    if path.suffix.lower() == ".csv":
        with open(path, newline="", encoding="utf-8-sig") as f:
            first = f.readline().split(",", 1)[0].strip().lower()
        if first == "metric":
            return [_from_export_csv(path, source)]
        from splitplan.apps.benchmark_rows import read_rows

        return read_rows(path).to_dict("records")  # the table format itself
    rows = []
    for k, data in enumerate(_json_records(path, source)):
        kind = _kind(data)
        where = source if k == 0 else f"{source} (record {k + 1})"
        if kind == "vllm":
            rows.append(_from_vllm(data, where))
        elif kind == "profile_export":
            rows.append(_from_profile_export(data, where))
        else:
            raise SplitplanError("not a vllm bench serve result, an AIPerf or a GenAI-Perf export (no TTFT found)",
                                 source=where)
    return rows


def result_files(path: str | Path) -> list[Path]:
    """The files a path names: itself, a folder's *.json (recursively), or a glob's matches."""
    text = str(path)
    if any(c in text for c in "*?["):
        files = sorted(Path(p) for p in glob.glob(text, recursive=True) if Path(p).is_file())
    elif Path(text).is_dir():
        files = sorted(p for p in Path(text).rglob("*.json") if p.is_file())
    elif Path(text).is_file():
        return [Path(text)]
    else:
        raise SplitplanError("file not found", source=text)
    files = [p for p in files if p.name not in SKIP_NAMES and not p.name.endswith(".pytorch.json")]
    if not files:
        raise SplitplanError("no benchmark result files (*.json) found", source=text)
    if len(files) > MAX_FILES:
        raise SplitplanError(f"{len(files):,} files is more than one read takes ({MAX_FILES:,})", source=text)
    return files


def _complete(row: dict[str, Any], given: dict[str, Any], source: str) -> dict[str, str]:
    """File values, then the options, then the defaults; a conflict or a missing field is an error."""
    out: dict[str, str] = {}
    for key in (*COLUMNS, *OPTIONAL):
        have = row.get(key)
        have = None if have is None or _text(have) == "" else _text(have)
        opt = given.get(key)
        opt = None if opt is None or _text(opt) == "" else _text(opt)
        if have is not None and opt is not None and have != opt:
            a, b = _num(have), _num(opt)
            if a is None or b is None or not math.isclose(a, b, rel_tol=1e-6):
                raise SplitplanError(f"the file says {have}, {OPTION.get(key, key)} says {opt}", source=source,
                                     field=key)
        value = have if have is not None else opt
        if value is None and key == "moe_weights":
            value = out.get("weights")
        if value is None:
            value = DEFAULTS.get(key)
        if value is None and key in COLUMNS:
            how = f"pass {OPTION[key]}" if key in OPTION else "the file has no mean for it"
            raise SplitplanError(f"missing ({how})", source=source, field=key)
        if value is not None:
            out[key] = value
    out["engine"] = out["engine"].lower()
    out["source_id"] = Path(source.split(" (record")[0]).name
    return out


def read_results(path: str | Path, **given: Any) -> pd.DataFrame:
    """The measured-serving table of one result file, a folder of them, or a glob (strings, as read_rows).

    `given`: values for what the files do not record (keys: the table's column names); a file's own value
    that contradicts one is an error."""
    unknown = sorted(set(given) - set(COLUMNS) - set(OPTIONAL))
    if unknown:
        raise SplitplanError(f"unknown field '{unknown[0]}' (fields: {', '.join(COLUMNS + OPTIONAL)})",
                             field="read_results")
    files = result_files(path)
    if len(files) == 1 and files[0].suffix.lower() == ".csv" and _first_cell(files[0]) != "metric":
        from splitplan.apps.benchmark_rows import read_rows

        return read_rows(files[0])  # the table format itself, unchanged
    rows = []
    for file in files:
        if file.suffix.lower() == ".csv" and _first_cell(file) != "metric":
            rows += [{k: _text(v) for k, v in r.items()} for r in _rows_of_file(file)]  # the table: as it is
            continue
        for k, row in enumerate(_rows_of_file(file)):
            rows.append(_complete(row, given, str(file) if k == 0 else f"{file} (record {k + 1})"))
    frame = pd.DataFrame(rows, dtype=str).fillna("")
    keep = [c for c in (*COLUMNS, *OPTIONAL) if c in frame.columns]
    extra = [c for c in frame.columns if c not in keep]
    return frame[keep + extra].reset_index(drop=True)


def _first_cell(path: Path) -> str:
    with open(path, newline="", encoding="utf-8-sig") as f:
        return f.readline().split(",", 1)[0].strip().lower()
