"""`build_report`: one self-contained HTML file from an optimize or simulate output folder.

Self-contained means it opens from an e-mail attachment or an air-gapped laptop: CSS inline, figures as
base64 PNG, no scripts, no fonts, no links outside the file. The page is deterministic (no timestamp):
the same output folder gives a byte-identical report, so reports can be diffed and committed.
"""

from __future__ import annotations

from pathlib import Path

from splitplan import __version__
from splitplan.atomic_io import write_atomic
from splitplan.errors import SplitplanError
from splitplan.report import plots
from splitplan.report.inputs import PlanOutput, ReportInput, SimOutput, load_output
from splitplan.report.plan_sections import plan_sections, plan_title
from splitplan.report.sim_sections import Section, cluster_label, sim_sections
from splitplan.report.tables import esc
from splitplan.report.trust_line import trust_line

CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 0 auto; max-width: 1180px;
       padding: 1.2em 2em 3em; color: #1d232a; line-height: 1.45; }
h1 { font-size: 1.6em; margin-bottom: 0.1em; } h2 { border-bottom: 2px solid #d8dee4; padding-bottom: 0.2em;
     margin-top: 1.8em; } h3 { margin-bottom: 0.3em; }
.subtitle { color: #57606a; margin-top: 0; }
nav { background: #f6f8fa; border: 1px solid #d8dee4; border-radius: 6px; padding: 0.5em 1em; }
nav a { margin-right: 1.1em; color: #0969da; text-decoration: none; white-space: nowrap; }
table { border-collapse: collapse; margin: 0.6em 0 1em; font-size: 0.92em; }
caption { text-align: left; color: #57606a; font-size: 0.92em; padding-bottom: 0.3em; }
th, td { border: 1px solid #d8dee4; padding: 0.25em 0.6em; vertical-align: top; }
thead th { background: #f6f8fa; } td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
table.kv th { text-align: left; background: #f6f8fa; font-weight: 600; }
tr.bad td { background: #ffebe9; } tr.tight td { background: #fff8c5; } tr.best td { background: #dafbe1; font-weight: 600; }
.verdict { font-size: 1.08em; padding: 0.5em 0.8em; border-radius: 6px; border: 1px solid #d8dee4; }
.verdict.good { background: #dafbe1; border-color: #4ac26b; } .verdict.warn { background: #fff8c5; border-color: #d4a72c; } .verdict.bad { background: #ffebe9; border-color: #ff8182; }
.note { color: #57606a; font-size: 0.9em; } img.plot { max-width: 100%; display: block; margin: 0.5em 0; }
details { margin: 0.6em 0; } summary { cursor: pointer; color: #0969da; }
pre { background: #f6f8fa; padding: 0.7em; overflow-x: auto; font-size: 0.85em; }
footer { margin-top: 3em; color: #57606a; font-size: 0.85em; }
"""


def build_report(out_dir: str | Path, html_path: str | Path | None = None, *, simulate_best: bool = True) -> Path:
    """Write the HTML report of `out_dir` (default `out_dir/report.html`) and return its path.

    simulate_best: for an optimize output without a saved simulation of its best plan, re-run the
    optimizer's verification of that plan (seconds) to draw its latency CDFs and timelines."""
    data = load_output(out_dir)
    target = Path(html_path) if html_path is not None else Path(out_dir) / "report.html"
    if target.exists() and target.is_dir():
        raise SplitplanError("is a directory; give a file name such as report.html", source=str(target))
    if not target.parent.exists():
        raise SplitplanError("the folder for the report does not exist", source=str(target.parent))
    write_atomic(target, render_report(data, simulate_best=simulate_best))
    return target


def render_report(data: ReportInput, *, simulate_best: bool = True) -> str:
    """The page as a string: title, table of contents, sections, footer."""
    if isinstance(data, PlanOutput):
        title, subtitle = plan_title(data.plan)
        sections = plan_sections(data, simulate_best)
        css, line = trust_line((data.plan.get("perf") or {}).get("provenance"), data.plan.get("warnings") or ())
    else:
        title, subtitle = "splitplan simulation report", cluster_label(data.summary)
        sections = sim_sections(data)
        css, line = trust_line((data.summary.get("perf") or {}).get("provenance"))
    lead = f'<p class="verdict {css} trust" id="trust">{esc(line)}</p>'
    return page(title, subtitle, sections, source=data.path, lead=lead)


def page(title: str, subtitle: str, sections: list[Section], *, source: Path, lead: str = "") -> str:
    """`lead`: HTML shown before everything else (the trust line: what the numbers rest on)."""
    nav = " ".join(f'<a href="#{esc(s.anchor)}">{esc(s.title)}</a>' for s in sections)
    body = "\n".join(f'<section id="{esc(s.anchor)}">\n<h2>{esc(s.title)}</h2>\n{s.body}\n</section>'
                     for s in sections)
    plot_note = "" if plots.plots_available() else f'<p class="verdict">{esc(plots.PLOT_EXTRA_HINT)}</p>'
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(title)}</title>
<style>{CSS}</style>
</head>
<body>
<h1>{esc(title)}</h1>
<p class="subtitle">{esc(subtitle)}</p>
{lead}
{plot_note}
<nav>{nav}</nav>
{body}
<footer>Generated by splitplan {esc(__version__)} from the output folder <code>{esc(source.name)}</code>.
Every figure in this file is embedded; it needs no network to view.</footer>
</body>
</html>
"""


__all__ = ["build_report", "render_report", "SimOutput", "PlanOutput"]
