"""Keys of runs: a hash of everything a run's numbers depend on.

A result store keeps a finished run under its key (:mod:`sim.experiments.runs.store`), and a
rerun reuses it only when the key is the same: the same resolved scenario point (its
seed included), policy, replication, package version and source code, and input files.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from importlib import metadata
from pathlib import Path
from typing import Any

from sim.experiments.runs.replication import PolicySpec, policy_class, uses_scenario_options
from sim.model.loading import file_sha256, named_files
from sim.model.reference import data_dir
from sim.model.scenario import Scenario
from sim.version import code_digest as code_digest  # re-exported for the engine and workers


def canonical_scenario(scenario: Scenario) -> str:
    """The resolved scenario as canonical JSON (sorted keys): equal scenarios, equal text.

    Leaves out ``replications``: how many runs to make is not part of any one run (a
    rerun with more replications reuses those already made).
    """
    data = scenario.model_dump(mode="json", by_alias=True)
    data.pop("replications", None)
    return json.dumps(data, sort_keys=True)


def keyed_scenario(scenario: Scenario) -> str:
    """:func:`canonical_scenario` with each file it names given by its name alone.

    A file's bytes are in the run key apart (:func:`input_digests`), so the folder it
    lies in is no part of a run: a run is found again when the same file is named from
    another place (a design's stations file in a staging folder and then in the output
    folder that replaced it, a scenario loaded from another working folder).
    """
    data = json.loads(canonical_scenario(scenario))
    for dotted, path in named_files(scenario).items():
        *parents, name = dotted.split(".")
        node = data
        for part in parents:
            node = node[part]
        node[name] = Path(path).name
    return json.dumps(data, sort_keys=True)


def scenario_digest(scenario: Scenario) -> str:
    return hashlib.sha256(canonical_scenario(scenario).encode("utf-8")).hexdigest()


def package_version() -> str:
    try:
        return metadata.version("rescue-sim")
    except metadata.PackageNotFoundError:
        return "unknown"


_FILE_DIGESTS: dict[tuple[str, int, int], str] = {}


def _file_digest(path: Path) -> str:
    """SHA-256 of a file, remembered while its size and modification time stay the same."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _FILE_DIGESTS:
        _FILE_DIGESTS[key] = file_sha256(path)
    return _FILE_DIGESTS[key]


def input_digests(scenario: Scenario) -> dict[str, str]:
    """SHA-256 of every file a run of ``scenario`` reads: reference data, named CSVs, matrix."""
    files = {f"seeds/{p.name}": p for p in sorted(data_dir("seeds").glob("*.csv"))}
    files.update(named_files(scenario))
    return {name: _file_digest(Path(path)) for name, path in files.items()}


def policy_identity(scenario: Scenario, policy: PolicySpec) -> dict[str, Any]:
    """What a policy's decisions depend on: its class, its options and, for a planner's
    own policy outside this package, the SHA-256 of its module's source."""
    cls = policy_class(scenario, policy)
    options = scenario.dispatch.options if uses_scenario_options(scenario, policy) else {}
    identity: dict[str, Any] = {
        "class": f"{cls.__module__}:{cls.__qualname__}",
        "options": options,
    }
    if not cls.__module__.startswith("sim."):
        try:
            source = inspect.getsourcefile(cls)
        except TypeError:
            source = None
        identity["source_sha256"] = _file_digest(Path(source)) if source else None
    return identity


def run_key(scenario: Scenario, policy: PolicySpec, replication: int) -> str:
    """The key of a run in a result store: a hash of all that its numbers depend on.

    The resolved scenario point (seed included; the files it names by their name and
    bytes, not their folder), the policy (class, options, source), the replication
    number, the package version and source code, and the input files.
    """
    payload = {
        "scenario": keyed_scenario(scenario),
        "policy": policy_identity(scenario, policy),
        "replication": replication,
        "seed": scenario.seed,
        "version": package_version(),
        "code": code_digest(),
        "inputs": input_digests(scenario),
    }
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]
