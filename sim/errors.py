"""Errors a user can cause, reported as one line naming file, line and field."""

from __future__ import annotations

from pathlib import Path


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


class ScenarioError(UserInputError):
    """A scenario file that cannot be read or does not validate."""


class PolicyError(UserInputError):
    """An unknown dispatch policy name or a ``module:Name`` that does not load."""
