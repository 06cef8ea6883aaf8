"""The experiments layer: runs of scenarios (replications, policies, grids of parameters,
network designs, calibration and sensitivity), what they return, and the regression-testing
helpers built on them. Builds scenarios and reads records and KPIs; never reaches into the
model's internals (docs/architecture.md).

Three sub-packages, one job each:

* ``runs``: the floor. ``executor`` runs (point, policy, replication) on local processes
  or Dask, ``store`` keeps each finished run for a rerun to resume from, ``keys`` hashes
  what a run depends on, ``precision`` adds replications until a KPI is precise enough,
  ``work_estimate`` judges the work before it starts; ``run``, ``compare``, ``sweep`` and
  ``sweep_file`` are built on them.
* ``design``: network design (``optimise``): candidate sites and the analytic first stage
  (``sites``, ``covering``), the search's moves, its evaluation of designs on common random
  numbers, and what it optimises (``spec``).
* ``fitting``: parameters against KPIs: ``calibrate`` and ``sensitivity``, both evaluating
  scenarios at points of a parameter space (``points``).

``design`` and ``fitting`` stand on ``runs`` and never import each other
(tests/test_layering.py); ``testing`` holds the regression helpers of the pytest plugin."""
