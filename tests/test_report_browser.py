"""The report opens in a real browser with the network off (skipped where no Chromium is installed)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_report import PLAN_SECTIONS, write_plan_output  # noqa: E402

from splitplan.report import build_report, plots_available  # noqa: E402

BROWSER = next((shutil.which(name) for name in ("chromium", "chromium-browser", "google-chrome") if shutil.which(name)),
               None)
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-extensions", "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>"]


def _run(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return subprocess.run([BROWSER, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *args], capture_output=True,
                          text=True, timeout=90, env={"HOME": str(home), "PATH": "/usr/bin:/bin"})


@pytest.mark.skipif(BROWSER is None, reason="no chromium on this machine")
def test_report_renders_in_headless_chromium_without_network(tmp_path):
    """A dead proxy stands in for 'no network': anything the page fetched from outside would fail.

    The browser loads a copy of the report with one probe script appended (the report itself has no
    scripts) that records each image's decoded width, so the embedded PNGs are proven to decode."""
    report = build_report(write_plan_output(tmp_path / "opt"), tmp_path / "report.html")
    probe = tmp_path / "probe.html"
    probe.write_text(report.read_text().replace("</body>", (
        "<div id=probe></div><script>window.onload = () => {document.getElementById('probe').textContent = "
        "'widths:' + Array.from(document.images).map(i => i.naturalWidth).join(',');}</script></body>")))
    result = _run(["--dump-dom", probe.as_uri()], tmp_path)
    dom = result.stdout
    assert result.returncode == 0, result.stderr[-2000:]
    for section in PLAN_SECTIONS:
        assert f'id="{section}"' in dom
    assert "Splitwise-HA" in dom and "12.3 req/s (seed mean 12.5, 95% CI 12.0–13.0)" in dom
    widths = re.search(r"widths:([0-9,]*)", dom).group(1)
    if plots_available():
        assert len(widths.split(",")) == 5 and min(int(w) for w in widths.split(",")) > 300
    else:
        assert widths == ""
