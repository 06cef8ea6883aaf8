"""sim.outputs.report: PNG figures and one self-contained HTML page from a run folder."""

from __future__ import annotations

import base64
import html
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from matplotlib import image
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from typer.testing import CliRunner

from sim import load_scenario, run
from sim.cli import app
from sim.model.loading import with_fields
from sim.outputs import figure_jobs
from sim.outputs import report as report_module
from sim.outputs.outlines import OUTLINE_CAPTION
from sim.outputs.report import load_run, plot_run, report_html, run_figures, write_report
from sim.outputs.run_folder import write_run

ROOT = Path(__file__).resolve().parents[1]
QUICK = ROOT / "scenarios" / "quick.yaml"
FIGURES = {
    "kpi_dashboard",
    "response_times",
    "hourly_profile",
    "van_utilisation",
    "network_map",
    "on_time_map",
    "timeline",
}
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run folder as ``rescue-sim run scenarios/quick.yaml --days 2 --out DIR`` writes it."""
    scenario = load_scenario(QUICK).with_overrides(
        horizon={"days": 2, "warmup_days": 0.2}, replications=2
    )
    return write_run(run(scenario), tmp_path_factory.mktemp("run") / "quick", QUICK)


@pytest.fixture(scope="module")
def report(run_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_report(run_dir, tmp_path_factory.mktemp("report") / "report.html")


def test_load_run_rebuilds_the_scenario_and_network(run_dir: Path) -> None:
    folder = load_run(run_dir)
    assert folder.scenario is not None and folder.scenario.name == "quick_henan"
    assert folder.network is not None and folder.network.n_vans == 110
    # warmup_days 0.2 is kept as whole days: none.
    assert folder.horizon_h == 48.0 and folder.warmup_h == 0.0


def test_plot_run_writes_every_figure_as_png(run_dir: Path, tmp_path: Path) -> None:
    paths = plot_run(run_dir, tmp_path / "figures")
    assert {p.stem for p in paths} == FIGURES
    for path in paths:
        data = path.read_bytes()
        assert data.startswith(PNG) and len(data) > 10_000
        pixels = image.imread(path)
        assert pixels.shape[0] > 300 and pixels.shape[1] > 400
        assert pixels[..., :3].std() > 0.05  # drawn, not blank
    assert not list((tmp_path / "figures").glob(".*tmp"))  # atomic: no temporary left behind


def test_figures_are_the_same_bytes_whatever_the_workers(run_dir: Path, tmp_path: Path) -> None:
    """Drawn side by side in forked processes or one by one here: the same files, in the
    same order; and the report the same page."""
    one = plot_run(run_dir, tmp_path / "one", workers=1)
    two = plot_run(run_dir, tmp_path / "two", workers=2)
    assert [p.name for p in one] == [p.name for p in two]
    assert [p.read_bytes() for p in one] == [p.read_bytes() for p in two]
    assert report_html(run_dir, workers=1) == report_html(run_dir, workers=2)


@pytest.mark.parametrize(("others", "idle"), [(0, 2), (1, 1), (5, 1), (None, 2)])
def test_figures_are_drawn_beside_each_other_on_idle_cores_only(
    monkeypatch: pytest.MonkeyPatch, others: int | None, idle: int
) -> None:
    """Two cores: two processes when no other is running, one when others are (never
    none), every core when the count cannot be read."""
    monkeypatch.setattr(figure_jobs, "usable_cores", lambda: 2)
    monkeypatch.setattr(figure_jobs, "_others_running", lambda: others)
    assert figure_jobs.idle_cores() == idle


def test_every_text_of_a_figure_is_inside_it(run_dir: Path) -> None:
    """Figures laid out at fixed margins cut no title, tick label or axis label off:
    what the figure draws (its tight box, in inches) lies within it."""
    for name, fig in run_figures(run_dir).items():
        fig.set_dpi(report_module.DPI)
        canvas = FigureCanvasAgg(fig)
        canvas.draw()  # lays it out and draws it as saving does
        drawn = fig.get_tightbbox(canvas.get_renderer())
        width, height = fig.get_size_inches()
        assert drawn.x0 >= 0 and drawn.y0 >= 0, name
        assert drawn.x1 <= width and drawn.y1 <= height, name


def test_plot_run_writes_to_run_dir_figures_by_default(
    run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One small figure stands in for the run's: only the folder is checked here.
    monkeypatch.setattr(report_module, "figure_makers", lambda run, baseline=None: {"one": Figure})
    assert plot_run(run_dir) == [run_dir / "figures" / "one.png"]
    assert (run_dir / "figures" / "one.png").read_bytes().startswith(PNG)


def test_report_is_one_self_contained_page(report: Path) -> None:
    text = report.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
    # The KPI table with the published target beside the headline rates.
    assert '<table class="kpis">' in text
    for kpi in ("on_time_arrival_rate", "complaint_closure_rate", "van_utilisation"):
        assert f"<code>{kpi}</code>" in text
    assert text.count("93.0%") >= 3
    # Figures embedded as base64 PNG, one per figure, each decoding to a PNG.
    images = re.findall(r'<img alt="([^"]+)" src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)
    assert {alt.replace(" ", "_") for alt, _ in images} == FIGURES
    for _, data in images:
        assert base64.b64decode(data).startswith(PNG)
    # The resolved scenario, and nothing fetched from anywhere: it opens offline.
    assert "&quot;name&quot;: &quot;quick_henan&quot;" in text
    assert "河南省" in text
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text)
    assert "<script" not in text
    assert not list(report.parent.glob(".*tmp"))


def test_report_is_written_to_run_dir_by_default(
    run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A stand-in page: only where it goes is checked here. It carries a report's title,
    # so that a later report of this folder replaces it as its own.
    page = "<!DOCTYPE html>\n<title>rescue-sim report: stand-in</title>\n"
    monkeypatch.setattr(report_module, "report_html", lambda run, baseline=None: page)
    assert write_report(run_dir) == run_dir / "report.html"
    assert (run_dir / "report.html").read_text(encoding="utf-8") == page


def test_report_survives_a_moved_scenario_csv(tmp_path: Path) -> None:
    """A run whose stations CSV has gone still reports (without the network's figures' extras)."""
    bench = load_scenario(ROOT / "scenarios" / "overloaded_neighbour.yaml")
    data = tmp_path / "data"
    data.mkdir()
    for name in ("overloaded_stations.csv", "overloaded_demand.csv"):
        shutil.copy(ROOT / "scenarios" / "data" / name, data / name)
    moved = bench.model_dump(by_alias=True)
    moved["network"]["stations"]["csv"] = data / "overloaded_stations.csv"
    moved["demand"]["spatial"]["csv"] = data / "overloaded_demand.csv"
    scenario = (
        type(bench)
        .model_validate(moved)
        .with_overrides(horizon={"days": 1, "warmup_days": 0.1}, replications=1)
    )
    run_dir = write_run(run(scenario), tmp_path / "run")
    shutil.rmtree(data)
    assert load_run(run_dir).network is None
    text = write_report(run_dir).read_text(encoding="utf-8")
    # The stations map needs the network; every other figure is there.
    assert text.count("data:image/png;base64,") == len(FIGURES) - 1
    assert 'id="network_map"' not in text and 'id="on_time_map"' in text


def test_maps_carry_the_outline_caption_in_the_report(report: Path) -> None:
    text = report.read_text(encoding="utf-8")
    for name in ("network_map", "on_time_map"):
        figure = text[text.index(f'<figure id="{name}">') :]
        caption = figure[figure.index("<figcaption>") : figure.index("</figcaption>")]
        assert html.escape(OUTLINE_CAPTION) in caption
    timeline = text[text.index('<figure id="timeline">') :]
    assert "DCW-GMT" not in timeline[: timeline.index("</figure>")]


def test_a_baseline_run_adds_the_map_of_network_changes(run_dir: Path, tmp_path: Path) -> None:
    """The same scenario with 20 more vans: every change a van count, none a site."""
    scenario = with_fields(load_scenario(QUICK), {"network.vans.total": 130}).with_overrides(
        horizon={"days": 1, "warmup_days": 0.1}, replications=1
    )
    more = write_run(run(scenario), tmp_path / "more_vans", QUICK)
    paths = plot_run(more, tmp_path / "figures", baseline_dir=run_dir)
    assert [p.stem for p in paths][-2:] == ["network_changes", "timeline"]
    changes = paths[-2]
    assert changes.read_bytes().startswith(PNG)
    text = report_html(more, run_dir)
    assert 'id="network_changes"' in text and "van counts changed" in text
    assert 'id="network_changes"' not in report_html(more)  # no baseline, no such map


def test_cli_names_a_baseline_that_is_not_a_run_folder(run_dir: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    for command in ("plot", "report"):
        done = runner.invoke(app, [command, str(run_dir), "--baseline", str(tmp_path / "nope")])
        assert done.exit_code == 2
        assert done.output.strip().splitlines() == [f"error: {tmp_path / 'nope'}: folder not found"]
    done = runner.invoke(app, ["report", str(run_dir), "--baseline", str(run_dir), "--out",
                               str(tmp_path / "r.html")])  # fmt: skip
    assert done.exit_code == 0, done.output
    assert 'id="network_changes"' in (tmp_path / "r.html").read_text(encoding="utf-8")


def _screenshot(chromium: str, page: Path, out: Path, profile: Path) -> None:
    command = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        f"--screenshot={out}",
        "--window-size=1200,1600",
        page.resolve().as_uri(),
    ]
    subprocess.run(command, check=True, capture_output=True, timeout=120)


def test_report_renders_in_headless_chromium(report: Path, tmp_path: Path) -> None:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    shot = tmp_path / "report.png"
    _screenshot(chromium, report, shot, tmp_path / "profile")
    pixels = image.imread(shot)[..., :3]
    assert pixels.shape[:2] == (1600, 1200)
    assert pixels.std() > 0.05  # not a blank page
    non_white = float(np.mean(pixels.min(axis=2) < 0.9))
    assert 0.02 < non_white < 0.9  # text, a table and the first figure, on a white page
