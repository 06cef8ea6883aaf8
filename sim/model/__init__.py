"""The model layer: everything one replication needs, and nothing that reads its results.

Scenario schema and loading, reference geography, the network, call streams (demand),
the hotline, dispatch policies, travel and promises, the SimPy engine surface, the
:class:`~sim.model.simulation.Model` itself, its records, and the complaint desk. Nothing
here imports the analysis, experiments or outputs layers (docs/architecture.md).
"""
