"""The report as a person sees it: headless Chromium renders index.html of
the shared TFMA run (screenshot and DOM). Skipped only without a Chromium
binary; `.ci/run` installs Debian's `chromium` when it runs as root."""
import os
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from components.report.component import build_report, write_report
from tests.components.evaluator import helpers as fx

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium binary on PATH (apt-get install -y chromium; .ci/run does it as root)")

# Offline, no profile state, no background traffic; --no-sandbox because CI runs as root.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SIZE = (1200, 2400)


@pytest.fixture(scope="module")
def page(run, tmp_path_factory):
    d = tmp_path_factory.mktemp("browser")
    report = build_report(run.config, run.eval_output, run.model_dir, run.eval_files, blessed=None,
                          model_run_dir=run.model_run_dir)
    write_report(report, str(d / "report"))
    return d


def _chromium(page_dir, *args) -> subprocess.CompletedProcess:
    url = "file://" + os.path.join(str(page_dir), "report", "index.html")
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={page_dir / 'profile'}", *args, url],
                          capture_output=True, text=True, timeout=180, check=True)


def _near(pixels: np.ndarray, rgb, tol=12) -> int:
    return int(np.sum(np.all(np.abs(pixels - np.array(rgb)) <= tol, axis=-1)))


def test_screenshot_shows_the_banner_tables_and_figures(page):
    png = page / "shot.png"
    _chromium(page, f"--screenshot={png}", f"--window-size={SIZE[0]},{SIZE[1]}")
    image = Image.open(png).convert("RGB")
    assert image.size == SIZE
    assert os.path.getsize(png) > 50_000            # a blank page of this size is ~10 KB
    px = np.asarray(image, dtype=np.int16)
    gray = px.mean(axis=-1)
    assert gray.std() > 20                           # not one flat colour
    assert np.mean(gray < 200) > 0.02                # text, table rules, plot lines
    # the red NOT BLESSED banner (CSS .bad background #fbe3e3) near the top
    assert _near(px[:250], (0xfb, 0xe3, 0xe3), tol=3) > 5_000
    # SVG figures drawn: the first line colour (#1f77b4) in curves and bars
    assert _near(px, (0x1f, 0x77, 0xb4), tol=20) > 500


def test_dom_has_a_section_and_figures_per_task(page):
    dom = _chromium(page, "--dump-dom").stdout
    assert "NOT BLESSED" in dom and "task <b>age</b>: accuracy" in dom
    for name in fx.COUNTS:
        assert f'id="task-{name}"' in dom
        assert f'aria-label="{name}: training loss"' in dom
    assert dom.count("<svg") == 3 * 4 + 2 + 3 + 2   # as in test_report.test_write_report
    assert dom.count("class=\"per-class\"") == 4     # every task with classes


FIRST_SCREEN = (1280, 800)   # a laptop's browser window


def test_first_screen_shows_the_verdict_and_a_summary_row_per_task(page, tmp_path):
    """Laid out by Chromium at 1280 x 800: the banner and every task's summary row end above the
    fold. The probe script is added to a copy of the page (the report itself has no scripts)."""
    import json

    html = open(os.path.join(str(page), "report", "index.html")).read()
    assert "<script" not in html
    probe = ("<script>const rows=[...document.querySelectorAll('table.summary tr')].slice(1).map(r=>("
             "{task:r.cells[0].innerText,bottom:r.getBoundingClientRect().bottom}));"
             "const b=document.querySelector('.banner').getBoundingClientRect().bottom;"
             "const p=document.createElement('pre');p.id='probe';p.textContent=JSON.stringify("
             "{rows:rows,banner:b,height:window.innerHeight});document.body.appendChild(p);</script>")
    copy = tmp_path / "report"
    copy.mkdir()
    (copy / "index.html").write_text(html.replace("</body>", probe + "</body>"))
    dom = _chromium(tmp_path, "--dump-dom", f"--window-size={FIRST_SCREEN[0]},{FIRST_SCREEN[1]}").stdout
    got = json.loads(dom.split("<pre id=\"probe\">")[1].split("</pre>")[0].replace("&quot;", '"'))
    assert 600 <= got["height"] <= FIRST_SCREEN[1]          # the viewport headless Chromium lays out
    assert [r["task"] for r in got["rows"]] == list(fx.COUNTS)
    assert 0 < got["banner"] < max(r["bottom"] for r in got["rows"]) <= got["height"]
    # and the screenshot of that screen holds the red banner and the table's header row
    png = tmp_path / "first.png"
    _chromium(page, f"--screenshot={png}", f"--window-size={FIRST_SCREEN[0]},{FIRST_SCREEN[1]}")
    px = np.asarray(Image.open(png).convert("RGB"), dtype=np.int16)
    assert px.shape[:2] == (FIRST_SCREEN[1], FIRST_SCREEN[0])
    assert _near(px, (0xfb, 0xe3, 0xe3), tol=3) > 5_000       # .bad banner
    assert _near(px, (0xf3, 0xf3, 0xf3), tol=2) > 3_000       # th background of the summary table
