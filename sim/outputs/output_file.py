"""An output file claimed before any work: checked, locked, written beside itself, renamed.

The one-file counterpart of :class:`~sim.outputs.output_folder.OutputFolder`, for the
commands whose output is a file (``fit-demand``, ``travel-matrix``, ``report``).
:meth:`OutputFile.claim` checks the place without opening anything there: it must be a
regular file or nothing, in a folder that can be written, and not under a file. A FIFO,
a socket or a device (``/dev/full``) is refused, never opened, so that the check cannot
block and a device is never replaced by a file; an existing file is refused unless told
to replace it. The claim then takes the same lock as an output folder (``.NAME.lock``
beside it), so that no other rescue-sim writes the same file meanwhile.
:meth:`OutputFile.write` writes a temporary file beside the target and renames it into
place (:func:`~sim.experiments.runs.store.atomic_write`): whatever stops the writer, the
place holds the old file or the new one, whole (and the next claim removes the temporary
file a killed writer left).
"""

from __future__ import annotations

import glob
import os
import stat
from collections.abc import Callable
from pathlib import Path

from sim.errors import OutputError
from sim.experiments.runs.store import atomic_write
from sim.outputs.output_folder import FolderLock, _make_parents, _remove_created, kind_of

ReplaceableTest = Callable[[Path], bool]
"""Says whether an existing file may be replaced without ``--overwrite`` (a command's own)."""


def _stat(path: Path) -> os.stat_result | None:
    """The status of ``path`` (symbolic links followed), None where there is nothing."""
    try:
        return os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None


def _check_place(
    target: Path,
    shown: str | Path,
    *,
    overwrite: bool,
    replaceable: ReplaceableTest | None,
    option: str,
) -> None:
    """Refuse a place that cannot take a new file; nothing is opened or created."""
    for ancestor in target.parents:
        status = _stat(ancestor)
        if status is None:
            continue
        if not stat.S_ISDIR(status.st_mode):
            what = kind_of(ancestor)
            raise OutputError(f"{shown} cannot be written: {ancestor} is {what}", field=option)
        if not os.access(ancestor, os.W_OK | os.X_OK):
            raise OutputError(f"{shown} cannot be written: {ancestor} is read-only", field=option)
        break
    status = _stat(target)
    if status is None:
        return
    if stat.S_ISDIR(status.st_mode):
        raise OutputError(f"{shown} is a folder, not a file", field=option)
    if not stat.S_ISREG(status.st_mode):
        raise OutputError(
            f"{shown} is {kind_of(target)}, not a regular file; name a file", field=option
        )
    if not os.access(target, os.W_OK):
        raise OutputError(f"{shown} is read-only", field=option)
    if not overwrite and not (replaceable is not None and replaceable(target)):
        raise OutputError(
            f"{shown} already exists; pass --overwrite to replace it, or choose another name",
            field=option,
        )


def _drop_leftovers(target: Path) -> None:
    """Remove the temporary files a writer of ``target`` killed mid-write left beside it
    (``.NAME.*.tmp``, as :func:`atomic_write` names them); call with the lock held."""
    for leftover in target.parent.glob(f".{glob.escape(target.name)}.*.tmp"):
        if leftover.is_file():
            leftover.unlink(missing_ok=True)


class OutputFile:
    """A file claimed for writing: checked and locked; :meth:`write` puts it in place.

    Use as a context manager (or call :meth:`release`): leaving releases the lock, and
    the folders made for the file are removed again if nothing was written.
    """

    def __init__(self, target: Path, shown: Path, lock: FolderLock, created: list[Path]) -> None:
        self.target = target
        """The absolute place, symbolic links followed."""
        self.shown = shown
        """The place as the user named it (for messages)."""
        self.written = False
        self._lock = lock
        self._created = created

    @classmethod
    def claim(
        cls,
        path: str | Path,
        *,
        overwrite: bool = False,
        replaceable: ReplaceableTest | None = None,
        option: str = "--out",
    ) -> OutputFile:
        """Check and lock ``path`` for a new file; raise :class:`OutputError` if it cannot be.

        An existing file is refused unless ``overwrite``, or unless ``replaceable(path)``
        says it is the command's own (a report it wrote before, say). ``option`` names
        the command-line option in messages.
        """
        shown = Path(path)
        try:
            target = Path(os.path.abspath(shown.expanduser())).resolve()
        except OSError as exc:  # a symlink loop, say
            raise OutputError(f"{path}: {exc.strerror or exc}", field=option) from None
        if target.parent == target:
            raise OutputError(f"{path} is a folder, not a file", field=option)
        _check_place(target, path, overwrite=overwrite, replaceable=replaceable, option=option)
        created = _make_parents(target, option)
        lock = FolderLock(target, option, what="file")
        try:
            lock.acquire()
            # Again under the lock: another writer may have put something there meanwhile.
            _check_place(target, path, overwrite=overwrite, replaceable=replaceable, option=option)
            _drop_leftovers(target)
        except BaseException:
            lock.release()
            _remove_created(created)
            raise
        return cls(target, shown, lock, created)

    def write(self, write: Callable[[Path], object]) -> Path:
        """Write the file through ``write(temporary_path)`` beside it, then rename it into
        place; returns the place as the user named it."""
        atomic_write(self.target, write)
        self.written = True
        return self.shown

    def release(self) -> None:
        """Drop the lock; the folders made for the file go too if nothing was written."""
        self._lock.release()  # before the folders made for it: the lock file is in one
        if not self.written:
            _remove_created(self._created)
            self._created = []

    def __enter__(self) -> OutputFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
