"""Network design: candidate sites, covering models, the simulated search (optimise)."""
