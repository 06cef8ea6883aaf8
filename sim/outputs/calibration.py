"""Writing a calibration: the calibrated scenario, the fit's residuals and uncertainties.

``calibrated.yaml`` is the scenario with the fitted values, every field that differs from
the defaults written out (it loads with ``rescue-sim run``), headed by a comment with
each fitted value and its interval; ``calibration.json`` holds the parameter table
(start, value, standard error, 95% interval), the residual of each target KPI with the
simulated interval, and how the solver ended; ``calibration_history.csv`` every point run.
The folder is written as a unit, with its manifest (:mod:`sim.outputs.output_folder`).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap

from sim.experiments.fitting.calibrate import CalibrationResult
from sim.outputs.output_folder import OutDir, claimed_folder

CALIBRATION_FILES = ("calibrated.yaml", "calibration.json", "calibration_history.csv")


def write_calibration(
    result: CalibrationResult,
    out_dir: OutDir,
    *,
    overwrite: bool = False,
) -> list[Path]:
    """Write calibrated.yaml, calibration.json and calibration_history.csv as one folder.

    ``out_dir`` is a path, or an :class:`~sim.outputs.output_folder.OutputFolder` claimed
    before the fit (as the command line does). A folder that already holds files is
    refused unless ``overwrite``. Returns the files' paths in the folder written.
    """
    with claimed_folder(out_dir, overwrite) as folder:
        _write_files(result, folder.staging)
        target = folder.commit(kind="calibration", seed=result.scenario.seed)
    return [target / name for name in CALIBRATION_FILES]


def _write_files(result: CalibrationResult, out_dir: Path) -> None:
    yaml_path = out_dir / CALIBRATION_FILES[0]
    data = result.scenario.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    root = CommentedMap(data)
    lines = [f"Calibrated ({result.message}; {result.evaluations} points run):"]
    for path, row in result.parameters.iterrows():
        lines.append(
            f"  {path} = {row['value']:.6g} (start {row['start']:.6g};"
            f" 95% interval {row['low']:.6g} - {row['high']:.6g})"
        )
    for kpi, row in result.residuals.iterrows():
        lines.append(
            f"  {kpi}: simulated {row['simulated']:.4g}"
            f" [{row['low']:.4g}, {row['high']:.4g}], target {row['target']:.4g}"
        )
    root.yaml_set_start_comment("\n".join(lines))
    yaml = YAML()
    yaml.width = 4096
    with yaml_path.open("w", encoding="utf-8") as handle:
        yaml.dump(root, handle)

    json_path = out_dir / CALIBRATION_FILES[1]
    summary = {
        "success": result.success,
        "message": result.message,
        "evaluations": result.evaluations,
        "replications": result.replications,
        # An unidentified parameter's infinite standard error is written as null.
        "parameters": json.loads(
            result.parameters.replace([math.inf, -math.inf], math.nan).to_json(orient="index")
        ),
        "residuals": json.loads(result.residuals.to_json(orient="index")),
    }
    json_path.write_text(json.dumps(summary, indent=2, ensure_ascii=False), encoding="utf-8")
    result.history.to_csv(out_dir / CALIBRATION_FILES[2], index=False)
