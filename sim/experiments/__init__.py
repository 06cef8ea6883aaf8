"""The experiments layer: runs of scenarios (replications, policies, grids of parameters,
network designs) and what they return. Builds scenarios and reads records and KPIs;
never reaches into the model's internals (docs/architecture.md)."""
