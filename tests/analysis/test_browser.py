"""report.html rendered by a real headless Chromium: every figure decodes and fits the page."""

from __future__ import annotations

import html
import json
import re
import subprocess
from pathlib import Path

import pytest

from analysis.cli import main
from tests.analysis.records import write_sweep
from tests.analysis.test_report import sweep_jobs

pytestmark = pytest.mark.slow
CHROMIUM = Path("/usr/bin/chromium")
WIDTH = 1280
# Appended to a copy of the report: after load, write what the browser made of each image.
PROBE = """<script>
window.addEventListener("load", () => {
  const images = [...document.images].map((i) => ({
    complete: i.complete, natural: i.naturalWidth, shown: i.getBoundingClientRect().width,
  }));
  const probe = document.createElement("pre");
  probe.id = "probe";
  probe.textContent = JSON.stringify(
    {images, page: document.documentElement.scrollWidth, view: window.innerWidth});
  document.body.appendChild(probe);
});
</script>"""


@pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Debian's chromium: apt-get install chromium"
)
def test_report_renders_in_headless_chromium(tmp_path: Path):
    sweep = write_sweep(tmp_path / "sweep", sweep_jobs())
    assert main([str(sweep), "--out", str(tmp_path / "out")]) == 0
    report = (tmp_path / "out" / "report.html").read_text()
    probe = tmp_path / "probe.html"
    probe.write_text(report.replace("</body>", PROBE + "</body>"))
    command = [
        str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
        f"--window-size={WIDTH},2000", "--virtual-time-budget=10000", "--dump-dom",
        probe.as_uri(),
    ]  # fmt: skip
    dom = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True).stdout
    found = re.search(r'<pre id="probe">(.*?)</pre>', dom)
    assert found, "the probe script did not run"
    result = json.loads(html.unescape(found.group(1)))
    images = result["images"]
    assert len(images) == len(list((tmp_path / "out").glob("*.png")))
    for image in images:
        assert image["complete"] and image["natural"] > 0, "an image failed to decode"
        assert 0 < image["shown"] <= result["view"], "an image is hidden or wider than the page"
    assert result["page"] <= result["view"], "the page scrolls sideways"
