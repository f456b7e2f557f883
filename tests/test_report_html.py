"""report.html: its content from report.json, and that its images render in headless Chromium."""
import base64
import os
import re
import shutil
import subprocess

import pytest

from pipeline.report import html

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run",
                  "--virtual-time-budget=5000"]
# Appended to a copy of the page: after load, records how many images decoded to real pixels.
PROBE = """<script>window.addEventListener("load", () => {
  const imgs = [...document.images];
  const ok = imgs.filter(i => i.complete && i.naturalWidth > 0).length;
  document.body.setAttribute("data-images", ok + "/" + imgs.length);
});</script>"""


def chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    return None


def image_ids(page: str) -> list[str]:
    return re.findall(r'<img id="([^"]+)"', page)


def test_page_is_self_contained_with_every_section(tiny_run):
    report, _ = tiny_run
    report = {**report, "layer_errors": [{"layer": "conv", "rmse_over_scale": 0.2},
                                         {"layer": "dense", "rmse_over_scale": 0.05}],
              "benchmarks": {"rows": [{"recipe": "ptq", "accuracy": 0.9, "bytes": 5000,
                                       "gzip_bytes": 3000, "latency_ms": {"median": 0.01}}]}}
    page = html.render_html(report)
    assert image_ids(page) == ["plot-accuracy-size", "plot-accuracy-latency", "plot-confusion-int8",
                               "plot-sparsity-keras", "plot-sparsity-int8", "plot-layer-errors"]
    assert "http://" not in page and "https://" not in page  # Nothing to fetch: one file.
    for data in re.findall(r'src="data:image/png;base64,([^"]+)"', page):
        assert base64.b64decode(data).startswith(b"\x89PNG\r\n\x1a\n")
    assert all(f'alt="' in tag for tag in re.findall(r"<img [^>]+>", page))
    assert "recipe: ptq" in html.points(report)[-1]["label"]


def test_optional_sections_are_left_out_when_absent(tiny_run):
    report, _ = tiny_run
    bare = {k: v for k, v in report.items() if k not in ("pruning", "layer_errors", "benchmarks")}
    bare["variants"] = [{k: v for k, v in variant.items() if k != "confusion_matrix"}
                        for variant in report["variants"]]
    ids = image_ids(html.render_html(bare))
    assert ids == ["plot-accuracy-size", "plot-accuracy-latency", "plot-sparsity-int8"]


def test_write_html_writes_the_rendered_page(tiny_run, tmp_path):
    report, _ = tiny_run
    path = html.write_html(report, str(tmp_path))
    assert path == str(tmp_path / "report.html")
    assert open(path, encoding="utf-8").read() == html.render_html(report)


def images_loaded(browser: str, page: str, folder) -> str:
    """"loaded/total" images after Chromium loads `page` (a copy with the probe appended)."""
    probe = folder / "probe.html"
    probe.write_text(page.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    result = subprocess.run(
        [browser, *CHROMIUM_FLAGS, f"--user-data-dir={folder / 'profile'}", "--dump-dom",
         probe.as_uri()], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    found = re.search(r'data-images="([0-9]+/[0-9]+)"', result.stdout)
    assert found, result.stdout[:500]
    return found.group(1)


def test_images_load_in_headless_chromium(tiny_run, tmp_path):
    browser = chromium()
    if browser is None:
        pytest.skip("headless Chromium not installed: run `make browser-deps` "
                    "(Debian packages chromium, chromium-driver)")
    report, out = tiny_run
    html_path = os.path.join(out, "report.html")
    # The page the pipeline wrote, never one rendered here: a run that wrote none fails.
    assert os.path.isfile(html_path), f"the pipeline wrote no report.html in {out}"
    page = open(html_path, encoding="utf-8").read()
    expected = len(image_ids(page))
    assert expected >= 4
    assert images_loaded(browser, page, tmp_path) == f"{expected}/{expected}"
    # The probe does catch a broken image: corrupt the first one's PNG data.
    broken = page.replace("base64,iVBOR", "base64,AAAA", 1)
    assert images_loaded(browser, broken, tmp_path) == f"{expected - 1}/{expected}"
