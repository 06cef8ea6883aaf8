"""The analysis layer: pure functions of a run's records (KPIs and their catalogue,
derived tables), queueing theory to validate against, and testing helpers. Imports the
model layer only (docs/architecture.md)."""
