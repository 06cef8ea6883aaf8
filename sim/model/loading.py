"""Reading scenarios: YAML to a validated :class:`~sim.model.scenario.Scenario`, a
mistake mapped to its file, line and dotted field, and fields changed by their paths.

``load_scenario`` is the only entry point that reads scenario files: it reports any
mistake as a :class:`~sim.errors.ScenarioError` naming the file, the line and the
dotted field (``demand.segments[1].share``). :func:`with_fields` changes fields by
those same dotted paths (the sweeps' ``--vary``). Both check that the dispatch policy
names a policy, which the schema leaves alone: the policies read the schema, so the
schema does not import them.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.reader import ReaderError

from sim.errors import PolicyError, ScenarioError
from sim.model.csv_input import decode_text
from sim.model.dispatch import resolve_policy
from sim.model.scenario import FieldError, Scenario
from sim.model.schema import MAX_SCENARIO_BYTES

# --------------------------------------------------------------------------- errors


def _line_of(node: Any, loc: Sequence[str | int]) -> int | None:
    """1-based line of the deepest node of ``loc`` present in the YAML tree."""
    line = getattr(getattr(node, "lc", None), "line", None)
    for part in loc:
        lc = getattr(node, "lc", None)
        if isinstance(node, Mapping) and part in node:
            if lc is not None:
                line = lc.key(part)[0]
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            if lc is not None:
                line = lc.item(part)[0]
            node = node[part]
        # A part that is not in the tree (a union tag, a missing key): stay on the parent.
    return None if line is None else line + 1


def _dotted(loc: Sequence[str | int]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in {"fixed", "exponential", "lognormal", "gamma", "uniform", "empirical"}:
            continue  # union tags pydantic adds: not a field the user wrote
        elif part.startswith("function-"):
            continue
        else:
            out += ("." if out else "") + part
    return out


# Values a scenario may hold once YAML aliases are expanded: far above any real scenario
# (the national one has a few hundred), low enough that nested aliases ("billion laughs")
# are refused instead of filling the memory.
MAX_SCENARIO_VALUES = 1_000_000


class _TooLarge(Exception):
    pass


def _plain(node: Any, budget: list[int] | None = None) -> Any:
    """Plain dicts and lists of a YAML tree, aliases expanded within a bounded budget."""
    budget = budget if budget is not None else [MAX_SCENARIO_VALUES]
    budget[0] -= 1
    if budget[0] < 0:
        raise _TooLarge
    if isinstance(node, Mapping):
        return {str(k): _plain(v, budget) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v, budget) for v in node]
    return node


def expanded(tree: Any, source: str | Path) -> Any:
    """Plain dicts and lists of a YAML tree (a scenario's, a sweep file's), its aliases
    expanded; past :data:`MAX_SCENARIO_VALUES` values a :class:`ScenarioError` naming
    ``source``, before nested aliases can fill the memory."""
    try:
        return _plain(tree)
    except _TooLarge:
        raise ScenarioError(
            f"more than {MAX_SCENARIO_VALUES:,} values once YAML aliases are expanded",
            file=source,
        ) from None


def _message(error: Mapping[str, Any]) -> str:
    msg = str(error["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix) :]
    if error["type"] == "extra_forbidden":
        msg = "unknown field"
    elif error["type"] == "union_tag_invalid":
        msg = (
            f"unknown distribution family {error['input'].get('dist')!r}"
            if isinstance(error.get("input"), Mapping)
            else msg
        )
    return msg


def _first_error(exc: ValidationError) -> tuple[str, tuple[str | int, ...]]:
    """The message and the field location of a validation's first error."""
    first = exc.errors()[0]
    loc = tuple(first["loc"])
    ctx_error = (first.get("ctx") or {}).get("error")
    if isinstance(ctx_error, FieldError):
        loc = loc + ctx_error.loc
    return _message(first), loc


def field_line(path: str | Path, field: str) -> int | None:
    """1-based line of a dotted field (``network.vans.total``, ``demand.segments[1]``) in a file."""
    try:
        tree = YAML(typ="rt").load(Path(path).read_text(encoding="utf-8-sig"))
    except (OSError, ValueError, YAMLError):  # ValueError: not UTF-8
        return None
    loc: list[str | int] = []
    for part in field.replace("]", "").split("."):
        name, *indices = part.split("[")
        loc.append(name)
        loc.extend(int(i) for i in indices)
    return _line_of(tree, loc)


_DATE_LIKE = re.compile(r"(?<![\w.-])(\d{4})-(\d{1,2})-(\d{1,2})(?![\w.-])")


def _bad_date_line(text: str) -> int | None:
    """1-based line of the first date-like YAML value that is no calendar date."""
    for number, line in enumerate(text.splitlines(), start=1):
        for match in _DATE_LIKE.finditer(line.split("#", 1)[0]):
            try:
                date(*(int(part) for part in match.groups()))
            except ValueError:
                return number
    return None


def _check_policy(scenario: Scenario) -> str | None:
    """Why the scenario's dispatch policy cannot be used, or None when it can."""
    try:
        resolve_policy(scenario.dispatch.policy)
    except PolicyError as exc:
        return exc.message
    return None


# --------------------------------------------------------------------------- reading


def parse_scenario(text: str, source: str | Path = "<scenario>") -> Scenario:
    """Validate scenario YAML text; relative file names resolve against ``source``'s folder."""
    yaml = YAML(typ="rt")
    try:
        tree = yaml.load(text)
    except ReaderError as exc:  # a control character or a NUL byte: name its line
        char = exc.character if isinstance(exc.character, int) else ord(str(exc.character)[:1])
        raise ScenarioError(
            f"not a text file: character U+{char:04X} is not allowed in YAML",
            file=source,
            line=text[: exc.position].count("\n") + 1,
        ) from None
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        raise ScenarioError(f"YAML syntax: {exc.problem or exc}", file=source, line=line) from None
    except YAMLError as exc:
        raise ScenarioError(f"YAML syntax: {exc}", file=source) from None
    except ValueError as exc:  # a value YAML recognises but cannot build: 2021-13-01, say
        raise ScenarioError(f"YAML value: {exc}", file=source, line=_bad_date_line(text)) from None
    if tree is None:
        # Not the national scenario by default: an empty file is far more likely a save
        # gone wrong than a wish for every default (run with no file for that).
        raise ScenarioError(
            "the scenario is empty; write at least its name (every other field has a default)",
            file=source,
            line=1,
        )
    if not isinstance(tree, Mapping):
        raise ScenarioError("a scenario must be a mapping of fields", file=source, line=1)
    base_dir = Path(source).parent if str(source) != "<scenario>" else Path.cwd()
    data = expanded(tree, source)
    try:
        scenario = Scenario.model_validate(data, context={"base_dir": base_dir})
    except ValidationError as exc:
        message, loc = _first_error(exc)
        raise ScenarioError(
            message, file=source, line=_line_of(tree, loc), field=_dotted(loc) or None
        ) from None
    problem = _check_policy(scenario)
    if problem is not None:
        line = _line_of(tree, ("dispatch", "policy"))
        raise ScenarioError(problem, file=source, line=line, field="dispatch.policy")
    return scenario


def check_size(path: Path, what: str) -> None:
    """Refuse a YAML file past the scenarios' size limit, before it is read (``what``: a
    scenario, a sweep file)."""
    size = path.stat().st_size
    if size > MAX_SCENARIO_BYTES:
        raise ScenarioError(
            f"{size:,} bytes is too large for {what} (at most {MAX_SCENARIO_BYTES:,})", file=path
        )


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file."""
    path = Path(path)
    try:
        check_size(path, "a scenario")
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ScenarioError("scenario file not found", file=path) from None
    except IsADirectoryError:
        raise ScenarioError("a folder, not a scenario file", file=path) from None
    except OSError as exc:
        raise ScenarioError(f"cannot read scenario: {exc.strerror or exc}", file=path) from None
    return parse_scenario(decode_text(raw, path), path)


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes, in hex (the run folder records one per input)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def named_files(scenario: Scenario) -> dict[str, Path]:
    """The files a scenario names (beside the reference data), by the field naming them:
    what a run reads besides seeds/, for the run folder's and the result store's hashes."""
    files: dict[str, Path] = {}
    if scenario.network.stations.csv is not None:
        files["network.stations.csv"] = Path(scenario.network.stations.csv)
    if scenario.demand.spatial.csv is not None:
        files["demand.spatial.csv"] = Path(scenario.demand.spatial.csv)
    if scenario.demand.spatial.roads is not None:
        files["demand.spatial.roads.osm"] = scenario.demand.spatial.roads.osm
    if scenario.travel.matrix is not None:
        files["travel.matrix"] = Path(scenario.travel.matrix)
    if scenario.demand.trace is not None:
        files["demand.trace.file"] = Path(scenario.demand.trace.file)
    return files


# --------------------------------------------------------------------------- dotted paths


def _field_path(path: str) -> list[str | int]:
    """``hotline.shifts[1].agents`` -> ["hotline", "shifts", 1, "agents"]."""
    loc: list[str | int] = []
    for part in path.split("."):
        name, *indices = part.split("[")
        if not name or any(not i.endswith("]") or not i[:-1].isdigit() for i in indices):
            raise ScenarioError("not a field path (write it as in the YAML: a.b[0].c)", field=path)
        loc.append(name)
        loc.extend(int(i[:-1]) for i in indices)
    return loc


def _set_field(data: dict[str, Any], path: str, value: Any) -> None:
    """Set a dotted field of a dumped scenario, which must already have it."""
    loc = _field_path(path)
    node: Any = data
    for depth, part in enumerate(loc):
        where = _dotted(loc[:depth]) or "the scenario"
        if isinstance(part, int):
            if not isinstance(node, list) or not 0 <= part < len(node):
                raise ScenarioError(f"{where} has no item [{part}]", field=path)
        elif not isinstance(node, dict) or part not in node:
            raise ScenarioError(f"{where} has no field {part!r}", field=path)
        if depth == len(loc) - 1:
            node[part] = value
            return
        child = node[part]
        if child is None:
            raise ScenarioError(
                f"{_dotted(loc[: depth + 1])} is not set in this scenario", field=path
            )
        if isinstance(child, tuple):  # dumped tuples become lists, so that items can be set
            child = node[part] = list(child)
        node = child


def with_fields(
    scenario: Scenario, values: Mapping[str, Any], base_dir: Path | None = None
) -> Scenario:
    """A copy of ``scenario`` with fields replaced by their dotted paths, validated again.

    Paths are written as in the YAML: ``network.vans.total``,
    ``hotline.shifts[1].agents``, ``dispatch.policy``. A path the scenario does not
    have, or a value its field refuses, raises :class:`ScenarioError` naming the field.
    A relative file name among the values is taken from ``base_dir`` (default: the
    current folder, as for any file named on a command line).
    """
    data = scenario.model_dump(by_alias=True)
    for path, value in values.items():
        _set_field(data, path, value)
    try:
        changed = Scenario.model_validate(data, context={"base_dir": base_dir or Path.cwd()})
    except ValidationError as exc:
        message, loc = _first_error(exc)
        raise ScenarioError(message, field=_dotted(loc) or None) from None
    problem = _check_policy(changed)
    if problem is not None:
        raise ScenarioError(problem, field="dispatch.policy")
    return changed


__all__ = ["field_line", "file_sha256", "load_scenario", "parse_scenario", "with_fields"]
