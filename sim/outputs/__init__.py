"""The outputs layer: the run folder on disk, figures and the HTML report. Reads results;
never runs a simulation (docs/architecture.md)."""
