"""rescue-sim replay: the page, opened in headless Chromium, counts what calls.parquet holds.

The page reads ``#t=HOURS`` and sets its slider through the same input event a user's
drag fires; ``chromium --headless --dump-dom`` then gives the page as drawn, counters
included. That needs no driver library (Chromium alone, as the report's screenshot test
uses it), and each time is one fresh page, so one reading cannot leak into the next.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib import image
from typer.testing import CliRunner

from sim import load_scenario, run
from sim.cli import app
from sim.outputs.run_folder import write_run

ROOT = Path(__file__).resolve().parents[1]
QUICK = ROOT / "scenarios" / "quick.yaml"
START_DAY = 1  # quick.yaml warms up for a day: the replay shows the second
TIMES_H = (27.0, 33.5, 44.25)  # three moments of that day, nudged off any event below
BUSY = ("to_site", "on_site", "returning", "relocating")
# The page's colours of vans at work (replay_page.html VAN_LOOK).
VAN_COLOURS = ((0xF0, 0x8C, 0x00), (0x18, 0x64, 0xAB), (0x0C, 0xA6, 0x78))
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run folder as ``rescue-sim run scenarios/quick.yaml --days 2 --out DIR`` writes it."""
    scenario = load_scenario(QUICK).with_overrides(horizon={"days": 2}, replications=2)
    return write_run(run(scenario), tmp_path_factory.mktemp("run") / "quick", QUICK)


@pytest.fixture(scope="module")
def page(run_dir: Path) -> Path:
    out = run_dir.parent / "day.html"
    args = ["replay", str(run_dir), "--out", str(out), "--start", str(START_DAY)]
    result = CliRunner().invoke(app, [*args, "--replication", "1"])
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def chromium() -> str:
    found = shutil.which("chromium")
    if found is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return found


def _chromium(chromium: str, profile: Path, *args: str) -> str:
    command = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args]
    done = subprocess.run(command, check=True, capture_output=True, text=True, timeout=180)
    return done.stdout


def _counters(chromium: str, page: Path, t_h: float, profile: Path) -> dict[str, float]:
    """The counters and the clock the page shows once its slider is at ``t_h``."""
    dom = _chromium(chromium, profile, "--dump-dom", f"{page.resolve().as_uri()}#t={t_h}")
    found = {k: int(v) for k, v in re.findall(r'id="n-(calls|ontime|busy)">(\d+)<', dom)}
    clock = re.search(r'data-t-h="([0-9.]+)"', dom)
    assert clock is not None and len(found) == 3, dom[:2000]
    return {**found, "t_h": float(clock.group(1))}


def _tables(run_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    calls = pd.read_parquet(run_dir / "calls.parquet")
    units = pd.read_parquet(run_dir / "units.parquet")
    return calls[calls["replication"] == 1], units[units["replication"] == 1]


def _expected(run_dir: Path, t_h: float) -> dict[str, float]:
    """The counters at ``t_h`` counted from the run's own tables."""
    calls, units = _tables(run_dir)
    start = START_DAY * 24.0
    made = (calls["t_call_h"] >= start) & (calls["t_call_h"] <= t_h)
    arrived = calls["arrived_h"] <= t_h
    on_time = calls["arrived_h"] <= calls["t_call_h"] + calls["arrival_promise_h"]
    ordered = units.sort_values("t_h", kind="stable")
    state = ordered[ordered["t_h"] <= t_h].groupby("van")["state"].last().astype(str)
    return {
        "calls": int(made.sum()),
        "ontime": int((made & arrived & on_time).sum()),
        "busy": int(state.isin(BUSY).sum()),
        "t_h": t_h,
    }


def _quiet_times(run_dir: Path) -> list[float]:
    """TIMES_H, each moved on by whole minutes until no recorded event is within 5 s.

    The page keeps times to the second; a moment right on an event could be counted
    either side of it there and here.
    """
    calls, units = _tables(run_dir)
    events = np.concatenate(
        [calls[c].to_numpy(float) for c in ("t_call_h", "arrived_h", "assigned_h")]
        + [units["t_h"].to_numpy(float)]
    )
    events = events[np.isfinite(events)]
    times = []
    for t_h in TIMES_H:
        while np.any(np.abs(events - t_h) < 5 / 3600):
            t_h += 1 / 60
        times.append(round(t_h, 6))
    return times


def _mismatches(chromium: str, page: Path, run_dir: Path, tmp: Path) -> list[str]:
    wrong = []
    for k, t_h in enumerate(_quiet_times(run_dir)):
        shown = _counters(chromium, page, t_h, tmp / f"profile{k}")
        expected = _expected(run_dir, t_h)
        if shown != pytest.approx(expected, abs=1e-4):
            wrong.append(f"at {t_h} h the page shows {shown}, calls.parquet {expected}")
    return wrong


def test_counters_equal_the_run_tables_at_three_times(
    chromium: str, page: Path, run_dir: Path, tmp_path: Path
) -> None:
    assert _mismatches(chromium, page, run_dir, tmp_path) == []
    # Three different readings: the slider really moved.
    assert len({_expected(run_dir, t)["calls"] for t in _quiet_times(run_dir)}) == 3


def test_a_broken_timestamp_is_caught(
    chromium: str, page: Path, run_dir: Path, tmp_path: Path
) -> None:
    """One call's time moved by six hours in the page's data: the counters disagree."""
    text = page.read_text(encoding="utf-8")
    mark = '<script id="data" type="application/json">'
    head, rest = text.split(mark, 1)
    payload, tail = rest.split("</script>", 1)
    data = json.loads(payload)
    first = _quiet_times(run_dir)[0]
    seconds = (first - START_DAY * 24.0) * 3600
    k = next(i for i, t in enumerate(data["calls"]["t"]) if t is not None and 0 <= t < seconds)
    data["calls"]["t"][k] += 6 * 3600
    broken = tmp_path / "broken.html"
    broken.write_text(head + mark + json.dumps(data) + "</script>" + tail, encoding="utf-8")
    wrong = _mismatches(chromium, broken, run_dir, tmp_path)
    assert wrong and f"at {first} h" in wrong[0]


def _van_pixels(shot: Path) -> np.ndarray:
    """Where the screenshot shows a working van: its colour to within antialiasing."""
    pixels = (image.imread(shot)[..., :3] * 255).astype(int)
    mask = np.zeros(pixels.shape[:2], dtype=bool)
    for colour in VAN_COLOURS:
        mask |= np.abs(pixels - np.array(colour)).max(axis=2) <= 6
    return mask


def test_screenshots_at_two_times_differ_in_the_vans(
    chromium: str, page: Path, run_dir: Path, tmp_path: Path
) -> None:
    masks = []
    for k, t_h in enumerate(_quiet_times(run_dir)[:2]):
        shot = tmp_path / f"t{k}.png"
        url = f"{page.resolve().as_uri()}#t={t_h}"
        _chromium(
            chromium, tmp_path / f"shot{k}", f"--screenshot={shot}", "--window-size=1200,800", url
        )
        masks.append(_van_pixels(shot))
    assert masks[0].sum() > 20 and masks[1].sum() > 20  # working vans drawn at both times
    assert (masks[0] != masks[1]).sum() > 20  # and not the same ones in the same places


def test_the_page_is_self_contained_and_says_what_it_shows(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and "<canvas" in text
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text)
    assert "fetch(" not in text and "XMLHttpRequest" not in text
    data = json.loads(text.split('type="application/json">', 1)[1].split("</script>", 1)[0])
    meta = data["meta"]
    assert (meta["scenario"], meta["seed"], meta["replication"]) == ("quick_henan", 7, 1)
    assert meta["version"] and "straight lines" in text


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["--replication", "7"], "--replication"),
        (["--start", "5"], "--start"),
        (["--start", "1", "--hours", "30"], "--hours"),
        (["--hours", "0"], "--hours"),
        (["--region", "Atlantis"], "--region"),
        (["--region", "Gansu"], "--region"),  # a province the run does not cover
    ],
)
def test_bad_options_end_in_one_line_and_write_nothing(
    run_dir: Path, tmp_path: Path, args: list[str], option: str
) -> None:
    out = tmp_path / "day.html"
    result = CliRunner().invoke(app, ["replay", str(run_dir), "--out", str(out), *args])
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and option in result.output
    assert not out.exists()


def test_a_folder_that_is_no_run_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "day.html"
    result = CliRunner().invoke(app, ["replay", str(tmp_path), "--out", str(out)])
    assert result.exit_code == 2 and result.output.count("\n") == 1
    assert not out.exists()


def test_the_report_embeds_the_replay_of_the_busiest_day(run_dir: Path, tmp_path: Path) -> None:
    from sim.outputs.report import write_report

    text = write_report(run_dir, tmp_path / "report.html").read_text(encoding="utf-8")
    frame = re.search(
        r'<iframe id="replay"[^>]* sandbox="allow-scripts"[^>]* srcdoc="([^"]*)"', text
    )
    assert frame is not None
    embedded = html.unescape(frame.group(1))
    data = json.loads(embedded.split('type="application/json">', 1)[1].split("</script>", 1)[0])
    calls = pd.read_parquet(run_dir / "calls.parquet")
    first = calls[calls["replication"] == 0]
    per_day = first.groupby(np.floor(first["t_call_h"] / 24))["call_id"].count().drop(0.0)
    assert data["meta"]["start_h"] == per_day.idxmax() * 24 and data["meta"]["replication"] == 0
