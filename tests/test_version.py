"""``rescue-sim --version`` prints the package's one version, which the build reads too."""

from __future__ import annotations

import tomllib
from pathlib import Path

from typer.testing import CliRunner

import sim
from sim.cli import app

ROOT = Path(__file__).resolve().parents[1]


def test_version_option_prints_the_version_and_exits() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0, result.output
    assert result.stdout == f"rescue-sim {sim.__version__}\n"


def test_the_build_takes_the_version_from_the_package() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    assert project["tool"]["hatch"]["version"]["path"] == "sim/__init__.py"
    assert sim.__version__.count(".") == 2
