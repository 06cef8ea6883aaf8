"""Dispatch policies: a registry of names, and loading of a planner's own ``module:Name``."""

from __future__ import annotations

import importlib

from sim.errors import PolicyError
from sim.model.dispatch.base import Contractor, DispatchPolicy, DispatchView, Order, Van
from sim.model.dispatch.moveup import ComplianceTable, DynamicMexclp, MoveUpPolicy
from sim.model.dispatch.policies import (
    ContractorOverflow,
    NearestIdleVan,
    NearestStation,
    NearestStationWithBackup,
    Preparedness,
    Priority,
)

REGISTRY: dict[str, type[DispatchPolicy]] = {}


def register(cls: type[DispatchPolicy]) -> type[DispatchPolicy]:
    """Make a policy class available by its ``name`` (usable as a decorator)."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} needs a non-empty 'name'")
    REGISTRY[cls.name] = cls
    return cls


for _cls in (
    NearestStation,
    NearestIdleVan,
    NearestStationWithBackup,
    Priority,
    Preparedness,
    ContractorOverflow,
    ComplianceTable,
    DynamicMexclp,
):
    register(_cls)


def resolve_policy(spec: str) -> type[DispatchPolicy]:
    """The policy class for a registered name or a ``package.module:ClassName``."""
    if spec in REGISTRY:
        return REGISTRY[spec]
    if ":" not in spec:
        known = ", ".join(sorted(REGISTRY))
        raise PolicyError(f"unknown policy {spec!r}; known: {known}, or package.module:Name")
    module_name, _, attr = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise PolicyError(f"cannot import policy module {module_name!r}: {exc}") from None
    if not attr:
        raise PolicyError(f"{spec!r} names no class: write package.module:ClassName")
    if not hasattr(module, attr):
        raise PolicyError(f"module {module_name!r} has no {attr!r}")
    cls = getattr(module, attr)
    if not (isinstance(cls, type) and issubclass(cls, DispatchPolicy)):
        raise PolicyError(f"{spec!r} is not a DispatchPolicy subclass")
    return cls


__all__ = [
    "REGISTRY",
    "ComplianceTable",
    "Contractor",
    "ContractorOverflow",
    "DispatchPolicy",
    "DispatchView",
    "DynamicMexclp",
    "MoveUpPolicy",
    "NearestIdleVan",
    "NearestStation",
    "NearestStationWithBackup",
    "Order",
    "Preparedness",
    "Priority",
    "Van",
    "register",
    "resolve_policy",
]
