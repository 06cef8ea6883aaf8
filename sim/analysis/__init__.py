"""The analysis layer: pure functions of a run's records (KPIs and their catalogue,
derived tables) and queueing theory to validate against. Imports the model layer only
(docs/architecture.md)."""
