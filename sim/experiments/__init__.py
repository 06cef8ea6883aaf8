"""The experiments layer: runs of scenarios (replications, policies, grids of parameters,
network designs, calibration and sensitivity), what they return, and the regression-testing
helpers built on them. Builds scenarios and reads records and KPIs; never reaches into the
model's internals (docs/architecture.md)."""
