"""The experiments layer: runs of scenarios (replications, policies, grids of parameters,
network designs, calibration and sensitivity), what they return, and the regression-testing
helpers built on them. Builds scenarios and reads records and KPIs; never reaches into the
model's internals (docs/architecture.md).

``engine`` runs (point, policy, replication) on local processes or Dask, ``store`` keeps
each finished run for a rerun to resume from, ``precision`` adds replications until a
KPI is precise enough, ``sweep_file`` reads large designs; ``run``, ``compare`` and
``sweep`` are built on them."""
