"""Running scenarios: the engine, the result store, replications, sweeps, comparisons."""
