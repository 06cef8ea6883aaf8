"""Errors a user can cause, reported as one line naming file, line and field.

Every class here but :class:`Terminated` is a :class:`UserInputError`: the command line
prints ``str(error)`` on one line and exits with code 2, never with a traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


class UserInputError(Exception):
    """Bad input from the user: a scenario, a policy name, a file path.

    The CLI prints ``str(error)`` on one line and exits with code 2; it never shows a
    traceback for this class.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | Path | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.message = message
        self.file = str(file) if file is not None else None
        self.line = line
        self.field = field
        super().__init__(self.__str__())

    def __str__(self) -> str:
        where = ""
        if self.file is not None:
            where = self.file
            if self.line is not None:
                where += f":{self.line}"
            where += ": "
        field = f"{self.field}: " if self.field else ""
        return f"{where}{field}{self.message}".replace("\n", " ")

    def __reduce__(self) -> tuple[Any, ...]:
        # Errors raised in a worker process travel back pickled: keep every part, not
        # only the text that Exception.__reduce__ would keep.
        return (
            _rebuild,
            (type(self), self.message, self.file, self.line, self.field, dict(self.__dict__)),
        )


def _rebuild(
    cls: type[UserInputError],
    message: str,
    file: str | None,
    line: int | None,
    field: str | None,
    state: dict[str, Any],
) -> UserInputError:
    error = cls.__new__(cls)
    UserInputError.__init__(error, message, file=file, line=line, field=field)
    error.__dict__.update(state)
    return error


class ScenarioError(UserInputError):
    """A scenario file that cannot be read or does not validate."""


class PolicyError(UserInputError):
    """An unknown dispatch policy name or a ``module:Name`` that does not load."""


class PolicyFailure(PolicyError):
    """A dispatch policy that raised while it was made or while it dispatched.

    The message names the policy, the replication, the call and the exception; the
    policy's own traceback stays on the exception's ``__cause__``.
    """


class OutputError(UserInputError):
    """An output place that cannot be written: a file, under a file, read-only, in use."""


class WorkLimitError(UserInputError):
    """Work estimated past a limit of this machine (memory, disk, time)."""


class CorruptFileError(UserInputError):
    """A file that rescue-sim wrote, or should have, that is corrupt, truncated or foreign."""


class Terminated(BaseException):
    """Raised in the main thread on SIGTERM, as KeyboardInterrupt is on SIGINT.

    A BaseException, so that ``except Exception`` never swallows it and every ``finally``
    on the way out runs (worker processes stopped, temporary folders removed).
    """
