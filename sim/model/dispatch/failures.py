"""A planner's policy that raises: one error naming the policy, the call and the exception.

The model calls a policy on every call (``assign``) and whenever a van is free
(``next_order``). Rather than wrap each of those calls on the hot path, a failure is
attributed after the fact: the traceback of an exception that escapes the model is
searched for the policy object's own frame, and the frames around it say which call (or
van) the policy was deciding. The exception itself stays the ``__cause__``, so a full
traceback is one flag away (``--debug``).
"""

from __future__ import annotations

import traceback
from collections.abc import Mapping
from types import FrameType
from typing import Any

from sim.errors import PolicyFailure
from sim.model.dispatch.base import DispatchPolicy


def describe_exception(exc: BaseException) -> str:
    """``ValueError: message`` on one line (the type alone when there is no message)."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def creation_failure(label: str, options: Mapping[str, Any], exc: Exception) -> PolicyFailure:
    """The policy class raised while it was made from its options."""
    given = f" with options {dict(options)}" if options else ""
    return PolicyFailure(
        f"policy {label!r} could not be made{given}: {describe_exception(exc)}",
        field="dispatch.options" if options else None,
    )


def _where(policy_frame: FrameType, caller: FrameType | None) -> str:
    """Which call (or van) the policy was deciding, from the frames' locals."""
    order = policy_frame.f_locals.get("order")
    call = getattr(order, "call", None)
    if isinstance(call, int) and call >= 0:
        return f" on call {call}"
    parts = []
    van_id = getattr(policy_frame.f_locals.get("van"), "id", None)
    if isinstance(van_id, int):
        parts.append(f"van {van_id}")
    index = caller.f_locals.get("i") if caller is not None else None
    if isinstance(index, int) and not isinstance(index, bool):
        parts.append(f"free after call {index}" if parts else f"call {index}")
    return f" for {', '.join(parts)}" if parts else ""


def policy_failure(
    exc: BaseException, policy: DispatchPolicy, label: str, replication: int
) -> PolicyFailure | None:
    """A :class:`PolicyFailure` if the policy's own code is on ``exc``'s traceback, else None."""
    if isinstance(exc, PolicyFailure):
        return None
    frames = [frame for frame, _ in traceback.walk_tb(exc.__traceback__)]
    for k, frame in enumerate(frames):
        if frame.f_locals.get("self") is not policy:
            continue
        where = _where(frame, frames[k - 1] if k else None)
        return PolicyFailure(
            f"policy {label!r} raised in {frame.f_code.co_name}(){where} "
            f"(replication {replication}): "
            f"{describe_exception(exc)}"
        )
    return None
