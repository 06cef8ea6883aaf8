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

from sim.errors import PolicyError, ScenarioError
from sim.model.dispatch import resolve_policy
from sim.model.scenario import FieldError, Scenario

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


def _plain(node: Any) -> Any:
    if isinstance(node, Mapping):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    return node


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
        tree = YAML(typ="rt").load(Path(path).read_text(encoding="utf-8"))
    except (OSError, YAMLError):
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
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        raise ScenarioError(f"YAML syntax: {exc.problem or exc}", file=source, line=line) from None
    except YAMLError as exc:
        raise ScenarioError(f"YAML syntax: {exc}", file=source) from None
    except ValueError as exc:  # a value YAML recognises but cannot build: 2021-13-01, say
        raise ScenarioError(f"YAML value: {exc}", file=source, line=_bad_date_line(text)) from None
    if tree is None:
        tree = {}
    if not isinstance(tree, Mapping):
        raise ScenarioError("a scenario must be a mapping of fields", file=source, line=1)
    base_dir = Path(source).parent if str(source) != "<scenario>" else Path.cwd()
    try:
        scenario = Scenario.model_validate(_plain(tree), context={"base_dir": base_dir})
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


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError("scenario file not found", file=path) from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"cannot read scenario: {exc.__class__.__name__}", file=path) from None
    return parse_scenario(text, path)


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes, in hex (the run folder records one per input)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


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
