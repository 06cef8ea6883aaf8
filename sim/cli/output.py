"""The output folder of a command that runs experiments: claimed before any work, with its
result store (sim.experiments.runs.store) inside, so that a rerun resumes.

:func:`claim_output` checks and locks ``--out`` (:class:`~sim.outputs.output_folder.OutputFolder`:
a folder that holds files is refused without ``--overwrite``, unless it is an unfinished
store of the same experiment) and places the store; :class:`Output` carries a finished
store into the folder that replaces the old one, and releases the lock.
"""

from __future__ import annotations

import contextlib
import errno
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sim.cli.app import out
from sim.cli.guard import leaves
from sim.errors import UserInputError

if TYPE_CHECKING:
    from sim.experiments.runs.progress import ProgressState, ReportFn
    from sim.experiments.runs.store import ResultStore
    from sim.model.scenario import Scenario
    from sim.outputs.output_folder import OutputFolder


STORE_KEPT = (
    "finished runs are kept in {root}; run the same command again to run only what is missing"
)


@dataclass
class Output:
    """The output folder of a command, claimed before any work, and its result store.

    The store is written in the target folder itself when that folder is new, empty or
    an unfinished store of the same experiment: an interruption then keeps the finished
    runs for a rerun to resume from (and leaves nothing when none had finished). When
    an existing folder is replaced (``--overwrite``), the store is written in the
    staging folder, seeded with the old folder's store, so that the old folder stays as
    it was until the new one replaces it.
    """

    folder: OutputFolder | None = None
    store: ResultStore | None = None
    in_target: bool = False
    made_target: bool = False

    @property
    def kept_store(self) -> ResultStore | None:
        """The store an interruption or a failure leaves in place, if any."""
        return self.store if self.in_target else None

    def reporting(self, report: ReportFn) -> ReportFn:
        """``report``, and once a run has finished in the target, what an interruption keeps."""
        if not self.in_target or self.store is None:
            return report
        root = self.store.root
        said = [False]

        def both(state: ProgressState) -> None:
            if not said[0] and state.finished - state.reused > 0:
                leaves(STORE_KEPT.format(root=root))
                said[0] = True
            report(state)

        return both

    def keep_store(self) -> None:
        """Carry a store written in the target into the folder about to replace it."""
        store = self.store
        if self.folder is not None and self.in_target and store is not None and store.root.is_dir():
            self.folder.adopt(store.root.name)

    def commit(self, write: Callable[[OutputFolder], object], shown: Path) -> None:
        """Write the folder's files with ``write`` (which commits it), the store carried
        over; ``shown`` is the folder as the user named it."""
        if self.folder is None:
            return
        self.keep_store()
        try:
            write(self.folder)
        except OSError as exc:
            if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            from sim.errors import OutputError

            target = self.folder.target
            name = None if exc.filename is None else Path(exc.filename).relative_to(target)
            kept = self.kept_store
            again = (
                f"; the finished runs are kept in {kept.root}: free some space and run the "
                "same command again"
                if kept is not None
                else ""
            )
            raise OutputError(
                f"{exc.strerror or 'no space left on device'}; {shown} is as it was{again}",
                file=shown if name is None else shown / name,
            ) from None
        leaves(f"{shown} was written in full")

    def close(self) -> None:
        """Release the folder; a store in the target without a finished run is removed."""
        if self.folder is None:
            return
        folder, self.folder = self.folder, None
        try:
            if not folder.committed and self.in_target and self.store is not None:
                drop_empty_store(self.store, folder.target, self.made_target)
        finally:
            folder.abort()  # after a commit only the lock is left to release


def drop_empty_store(store: ResultStore, target: Path, made_target: bool) -> None:
    import shutil

    root = store.root
    if not root.is_dir():
        return
    kept = any((root / "runs").glob("*.parquet")) or any((root / "failed").glob("*.json"))
    if kept:
        return
    shutil.rmtree(root, ignore_errors=True)
    if made_target:
        with contextlib.suppress(OSError):
            target.rmdir()  # only if nothing else is in it


def resumable(description: dict[str, Any]) -> Callable[[Path], bool]:
    """Whether a folder is an unfinished result store of the same experiment."""
    from sim.experiments.runs.store import ResultStore

    def same(path: Path) -> bool:
        if (path / "manifest.json").exists():
            return False  # a finished folder: replaced only with --overwrite
        try:
            manifest = ResultStore.in_folder(path).read_manifest()
        except (OSError, ValueError, UserInputError):
            return False
        return all(manifest.get(key) == value for key, value in description.items())

    return same


def described(command: str, file: Path, scenario: Scenario, **more: Any) -> dict[str, Any]:
    """What an experiment's store is kept under: the command, its scenario file and the
    resolved scenario (replications aside), and ``more``; a rerun that differs in any
    starts afresh, and a non-empty ``--out`` of another is refused without ``--overwrite``."""
    from sim.experiments.runs.keys import scenario_digest

    return {
        "command": command,
        "scenario_file": str(file),
        "scenario_sha256": scenario_digest(scenario),
        **more,
    }


def claim_output(out_dir: Path | None, overwrite: bool, description: dict[str, Any]) -> Output:
    """Check and lock the output folder before any work, and place its result store."""
    if out_dir is None:
        return Output()
    from sim.experiments.runs.store import ResultStore
    from sim.outputs.output_folder import OutputFolder

    existed = out_dir.exists()
    described = json.loads(json.dumps(description))  # as the store's manifest reads back
    folder = OutputFolder.claim(out_dir, overwrite=overwrite, resumable=resumable(described))
    leaves(f"nothing was written; {out_dir} is as it was")
    target = folder.target
    fresh = not target.exists() or not any(target.iterdir())
    if folder.resuming or fresh:
        store = ResultStore.in_folder(target)
        return Output(folder, store, in_target=True, made_target=not existed)
    try:
        if (ResultStore.in_folder(target).root).is_dir():
            folder.adopt(ResultStore.in_folder(target).root.name)  # runs to reuse
    except BaseException:
        folder.abort()
        raise
    return Output(folder, ResultStore.in_folder(folder.staging))


@contextmanager
def claimed(out_dir: Path | None, overwrite: bool, description: dict[str, Any]) -> Iterator[Output]:
    """:func:`claim_output` for the block inside; the folder is released on the way out
    (with an empty store removed, and the old folder left as it was unless committed)."""
    output = claim_output(out_dir, overwrite, description)
    try:
        yield output
    finally:
        output.close()


def written(out_dir: Path) -> str:
    """``wrote DIR: a.parquet, b.json, store/``: what the folder holds now, as committed."""
    names = sorted(
        p.name + ("/" if p.is_dir() else "")
        for p in out_dir.iterdir()
        if not p.name.startswith(".")
    )
    return f"wrote {out_dir}: {', '.join(names)}"


def show_written(out_dir: Path | None, note: str = "") -> None:
    """Print the :func:`written` line (with ``note`` after it) when there is a folder."""
    if out_dir is not None:
        out.print(f"{written(out_dir)}{note}", highlight=False)
