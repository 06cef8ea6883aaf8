"""An output folder written as a unit: staged beside its place, checked, locked, verified.

:meth:`OutputFolder.claim` is called before any simulation starts. It checks the place
(not a file, not under a file, writable), takes a lock so that no other rescue-sim
writes the same folder, refuses a folder that already holds files unless told to
replace it, and makes an empty staging folder beside the target (``.NAME.partial-XXXX``,
on the same file system). The caller writes every file into :attr:`OutputFolder.staging`;
:meth:`OutputFolder.commit` then writes ``manifest.json`` (size and SHA-256 of every file,
the command, the seed), flushes everything to disk and swaps the staging folder into
place in one step. Whatever kills the process, at any moment, the target holds either
the old folder or the new one, complete: never a mix.

Readers open a folder with :func:`open_folder`, which checks every file against the
manifest and reads them all through one open handle on the folder, so that a folder
replaced while it is read is not mixed either.

The swap is Linux's ``renameat2(RENAME_EXCHANGE)``. Elsewhere (or on a file system
without it) the old folder is renamed aside to ``.NAME.previous`` and the new one into
place; if a process dies between the two renames, readers fall back to
``.NAME.previous`` and the next :meth:`~OutputFolder.claim` puts it back.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import json
import os
import shutil
import signal
import stat
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from sim.errors import CorruptFileError, OutputError

MANIFEST = "manifest.json"
MANIFEST_FORMAT = "rescue-sim output folder"
MANIFEST_VERSION = 1
_CHUNK = 1 << 20

# Failure injection for the tests that kill a writer at a given step: when this
# environment variable names a step, the process kills itself (SIGKILL) there.
FAILPOINT_ENV = "RESCUE_SIM_FAILPOINT"


def _failpoint(step: str) -> None:
    if os.environ.get(FAILPOINT_ENV) == step:
        os.kill(os.getpid(), signal.SIGKILL)


# --------------------------------------------------------------------------- places


def _hidden(target: Path, suffix: str) -> Path:
    """A sibling of ``target`` named ``.NAME.suffix`` (hidden, same file system)."""
    return target.parent / f".{target.name}.{suffix}"


def _staging_prefix(target: Path) -> str:
    return f".{target.name}.partial-"


def _what(path: Path) -> str:
    return "a folder" if path.is_dir() else "a file" if path.exists() else "nothing"


def kind_of(path: Path) -> str:
    """What is at ``path`` that is not a folder, in words: ``a file``, ``a FIFO (named
    pipe)``, ``a socket``, ``a character device``... (found by its status: never opened)."""
    mode = os.stat(path).st_mode
    kinds = (
        (stat.S_ISREG, "a file"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
    )
    return next((name for test, name in kinds if test(mode)), "not a regular file")


def _resolve(path: str | Path, option: str) -> Path:
    """The absolute place, symbolic links followed; refuses a file or a place under one."""
    target = Path(os.path.abspath(Path(path).expanduser()))
    try:
        target = target.resolve()
    except OSError as exc:  # a symlink loop, say
        raise OutputError(f"{path}: {exc.strerror or exc}", field=option) from None
    if target.parent == target:
        raise OutputError(f"{path}: cannot replace the root folder", field=option)
    if target.exists() and not target.is_dir():
        raise OutputError(f"{path} is {kind_of(target)}, not a folder", field=option)
    for ancestor in target.parents:
        if ancestor.exists():
            if not ancestor.is_dir():
                what = kind_of(ancestor)
                raise OutputError(f"{path} cannot be a folder: {ancestor} is {what}", field=option)
            break
    return target


def check_writable(path: str | Path, option: str = "--out", *, folder: bool = True) -> Path:
    """Check, creating nothing, that ``path`` could be written (a folder, or a file).

    For commands whose work is short (figures, a report): the place must not be a file
    where a folder is wanted or the reverse, must not lie under a file, and the nearest
    folder that exists must be writable. Returns the absolute path.
    """
    place = Path(os.path.abspath(Path(path).expanduser()))
    if place.exists() and folder != place.is_dir():
        want = "a folder" if folder else "a file"
        raise OutputError(f"{path} is {_what(place)}, not {want}", field=option)
    for ancestor in place.parents:
        if ancestor.exists():
            if not ancestor.is_dir():
                raise OutputError(f"{path} cannot be written: {ancestor} is a file", field=option)
            if not os.access(ancestor, os.W_OK | os.X_OK):
                raise OutputError(
                    f"{path} cannot be written: {ancestor} is read-only", field=option
                )
            break
    if place.exists() and not os.access(place, os.W_OK):
        raise OutputError(f"{path} is read-only", field=option)
    return place


def _os_error(exc: OSError, where: Path, option: str) -> OutputError:
    reason = exc.strerror or str(exc)
    return OutputError(f"cannot write in {where}: {reason}", field=option)


# --------------------------------------------------------------------------- lock


class FolderLock:
    """An exclusive lock on one output place, held by an open file beside it.

    The lock file ``.NAME.lock`` holds the owner's pid, start time and command, to name
    them when a second writer is refused. The kernel drops the lock when its process
    dies however it dies, so a killed run never leaves a folder locked; the file is
    removed on release.
    """

    def __init__(self, target: Path, option: str = "--out", what: str = "folder") -> None:
        self.target = target
        self.path = _hidden(target, "lock")
        self.option = option
        self.what = what  # "folder" or "file": what the refusal tells the user to choose
        self._file: IO[str] | None = None

    def acquire(self) -> FolderLock:
        while True:
            try:
                handle = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 -- held open
            except OSError as exc:
                raise _os_error(exc, self.target.parent, self.option) from None
            try:
                _lock_nowait(handle)
            except BlockingIOError:
                handle.seek(0)
                owner = handle.read().strip().splitlines()
                handle.close()
                who = f" ({owner[0]})" if owner else ""
                raise OutputError(
                    f"{self.target} is being written by another rescue-sim{who}; "
                    f"wait for it to finish or choose another {self.what}",
                    field=self.option,
                ) from None
            except OSError as exc:
                handle.close()
                raise _os_error(exc, self.target.parent, self.option) from None
            # The previous holder may have removed the file between our open and our lock:
            # then we locked a file nobody else will see; open the new one.
            try:
                same = os.fstat(handle.fileno()).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            handle.close()
        handle.seek(0)
        handle.truncate()
        started = datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S")
        handle.write(f"pid {os.getpid()}, since {started}\n{' '.join(sys.argv)}\n")
        handle.flush()
        self._file = handle
        return self

    def release(self) -> None:
        if self._file is None:
            return
        with contextlib.suppress(OSError):
            self.path.unlink()  # while still locked: the next holder opens a fresh file
        self._file.close()  # closing drops the lock
        self._file = None

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _lock_nowait(handle: IO[str]) -> None:
    """Take an exclusive lock on an open file now, or raise BlockingIOError."""
    if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
        import msvcrt

        try:
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        except OSError as exc:
            raise BlockingIOError(str(exc)) from None
        return
    import fcntl

    fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)


# --------------------------------------------------------------------------- swap

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux renameat2); False where that is not available."""
    if sys.platform != "linux" or os.environ.get("RESCUE_SIM_NO_EXCHANGE"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):  # a libc without it (musl before 1.2.x, say)
        return False
    renameat2.argtypes = (
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_uint,
    )
    done = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if done == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP):
        return False  # the kernel or the file system cannot: fall back to two renames
    raise OSError(code, os.strerror(code), str(b))


def _fsync_tree(root: Path) -> None:
    """Flush every file and folder under ``root`` to disk (a crash of the machine too)."""
    for folder, _, files in os.walk(root):
        for name in files:
            fd = os.open(os.path.join(folder, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _fsync_dir(Path(folder))


def _fsync_dir(folder: Path) -> None:
    if sys.platform == "win32":  # pragma: no cover - folders cannot be opened there
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """Hold SIGINT and SIGTERM back for a few system calls that must not be split."""
    blockable = hasattr(signal, "pthread_sigmask") and (
        threading.current_thread() is threading.main_thread()
    )
    if not blockable:
        yield
        return
    held = {signal.SIGINT, signal.SIGTERM}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def recover(target: Path) -> None:
    """Undo a swap that died halfway (two-rename fallback only), and drop stale staging.

    Call with the folder's lock held.
    """
    previous = _hidden(target, "previous")
    if previous.is_dir():
        if not target.exists():
            os.rename(previous, target)  # the new folder never arrived: keep the old one
        else:
            _remove_tree(previous)  # the new folder arrived: the old one is garbage
    if target.parent.is_dir():
        for leftover in target.parent.glob(_staging_prefix(target) + "*"):
            _remove_tree(leftover)


# --------------------------------------------------------------------------- manifest


def file_digest(handle: IO[bytes]) -> tuple[int, str]:
    """Size and SHA-256 of an open binary file, read from its start."""
    handle.seek(0)
    digest = hashlib.sha256()
    size = 0
    while chunk := handle.read(_CHUNK):
        digest.update(chunk)
        size += len(chunk)
    handle.seek(0)
    return size, digest.hexdigest()


def _listing(root: Path) -> list[str]:
    names = []
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            names.append(Path(folder, name).relative_to(root).as_posix())
    return names


def manifest_for(
    root: Path,
    *,
    kind: str,
    command: Sequence[str] | None,
    seed: int | None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The manifest of the files now under ``root`` (``manifest.json`` itself excluded)."""
    from sim.version import __version__

    files = {}
    for name in _listing(root):
        if name == MANIFEST:
            continue
        with open(root / name, "rb") as handle:
            size, sha256 = file_digest(handle)
        files[name] = {"bytes": size, "sha256": sha256}
    return {
        "format": MANIFEST_FORMAT,
        "version": MANIFEST_VERSION,
        "kind": kind,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "rescue_sim": __version__,
        "command": list(command) if command is not None else list(sys.argv),
        "seed": seed,
        **dict(extra or {}),
        "files": files,
    }


# --------------------------------------------------------------------------- writing


ResumableTest = Callable[[Path], bool]
"""Says whether an existing folder is a resumable store of the same experiment."""


class OutputFolder:
    """A folder claimed for writing: checked and locked; files go to :attr:`staging`.

    Use as a context manager (or call :meth:`abort`): leaving without :meth:`commit`
    removes the staging folder, and the target is as it was.
    """

    def __init__(self, target: Path, staging: Path, lock: FolderLock, resuming: bool) -> None:
        self.target = target
        self.staging = staging
        self.resuming = resuming
        self._lock = lock
        self._option = lock.option
        self._created: list[Path] = []
        self.committed = False

    @classmethod
    def claim(
        cls,
        path: str | Path,
        *,
        overwrite: bool = False,
        resumable: ResumableTest | None = None,
        option: str = "--out",
    ) -> OutputFolder:
        """Check and lock ``path`` for a new folder; raise :class:`OutputError` if it cannot be.

        A folder that already holds files is refused unless ``overwrite``, or unless
        ``resumable(path)`` says it is a resumable store of the same experiment (then
        :attr:`resuming` is true: the old files stay in place until :meth:`commit`, and
        :meth:`adopt` brings what is kept into the staging folder). ``option`` names the
        command-line option in messages.
        """
        target = _resolve(path, option)
        created = _make_parents(target, option)
        lock = FolderLock(target, option)
        try:
            lock.acquire()
            try:
                recover(target)
                resuming = _check_target(target, path, overwrite, resumable, option)
                staging = Path(tempfile.mkdtemp(prefix=_staging_prefix(target), dir=target.parent))
                _normal_mode(staging)
            except OSError as exc:
                raise _os_error(exc, target.parent, option) from None
        except BaseException:
            lock.release()
            _remove_created(created)
            raise
        folder = cls(target, staging, lock, resuming)
        folder._created = created
        return folder

    def adopt(self, relative: str | Path) -> None:
        """Bring a file or folder of the existing target into staging (hard links if possible).

        For a resumed store: what was already computed is kept without copying it.
        """
        source = self.target / relative
        destination = self.staging / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, destination, copy_function=_link_or_copy)
        else:
            _link_or_copy(str(source), str(destination))

    def commit(
        self,
        *,
        kind: str,
        command: Sequence[str] | None = None,
        seed: int | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> Path:
        """Write the manifest, flush to disk and swap the staging folder into place."""
        if self.committed:
            raise RuntimeError("this output folder is already committed")
        try:
            _failpoint("staged")
            manifest = manifest_for(
                self.staging, kind=kind, command=command, seed=seed, extra=extra
            )
            text = json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"
            (self.staging / MANIFEST).write_text(text, encoding="utf-8")
            _fsync_tree(self.staging)
            _failpoint("manifest")
            with _signals_deferred():
                old = self._swap()
                self.committed = True
        except OSError as exc:
            raise _os_error(exc, self.target.parent, self._option) from None
        finally:
            if not self.committed:
                self.abort()
        try:
            _failpoint("swapped")
            if old is not None:
                _remove_tree(old)
            with contextlib.suppress(OSError):
                _fsync_dir(self.target.parent)
        finally:
            self._lock.release()
        return self.target

    def _swap(self) -> Path | None:
        """Put staging in the target's place; returns where the old folder went, if any."""
        if not self.target.exists():
            os.rename(self.staging, self.target)
            return None
        if _exchange(self.staging, self.target):
            return self.staging  # which now holds the old folder
        previous = _hidden(self.target, "previous")
        os.rename(self.target, previous)
        _failpoint("set-aside")
        os.rename(self.staging, self.target)
        return previous

    def abort(self) -> None:
        """Drop the staging folder and the lock; the target is left as it was."""
        if not self.committed:
            _remove_tree(self.staging)
        self._lock.release()  # before the folders made for it: the lock file is in one
        if not self.committed:
            _remove_created(self._created)

    def __enter__(self) -> OutputFolder:
        return self

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        if not self.committed:
            if isinstance(exc, OSError) and exc.errno in _FULL and exc.filename is None:
                exc.filename = _last_written(self.staging, self.target)  # before it goes
            self.abort()


# A disk (or the user's quota) full: the file being written is named.
_FULL = (errno.ENOSPC, errno.EDQUOT)


def _last_written(staging: Path, target: Path) -> str | None:
    """The file of ``staging`` written last, as it would be in ``target`` (a store aside)."""
    files = [
        path
        for path in staging.rglob("*")
        if path.is_file() and path.relative_to(staging).parts[0] != "store"
    ]
    newest = max(files, key=lambda path: path.stat().st_mtime_ns, default=None)
    return None if newest is None else str(target / newest.relative_to(staging))


OutDir = str | Path | OutputFolder
"""Where a writer writes: a path (claimed by the writer) or a folder claimed by its caller."""


def claimed_folder(out_dir: OutDir, overwrite: bool = False) -> OutputFolder:
    """``out_dir`` itself when already claimed (as the command line does, before any
    work), else the folder at that path, claimed now."""
    if isinstance(out_dir, OutputFolder):
        return out_dir
    return OutputFolder.claim(out_dir, overwrite=overwrite, option="out_dir")


def _normal_mode(folder: Path) -> None:
    """mkdtemp makes a private (0700) folder; the output folder gets the usual mode."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(folder, 0o777 & ~umask)


def _link_or_copy(source: str, destination: str) -> None:
    try:
        os.link(source, destination)
    except OSError:
        shutil.copy2(source, destination)


def _make_parents(target: Path, option: str) -> list[Path]:
    """Create the missing folders above ``target``; returns them, outermost first."""
    missing = [p for p in reversed(target.parents) if not p.exists()]
    created: list[Path] = []
    for folder in missing:
        try:
            folder.mkdir()
        except FileExistsError:
            continue  # made meanwhile by someone else: not ours to remove
        except OSError as exc:
            _remove_created(created)
            raise _os_error(exc, folder.parent, option) from None
        created.append(folder)
    return created


def _remove_created(created: list[Path]) -> None:
    for folder in reversed(created):
        with contextlib.suppress(OSError):
            folder.rmdir()  # only if still empty


def _check_target(
    target: Path,
    path: str | Path,
    overwrite: bool,
    resumable: ResumableTest | None,
    option: str,
) -> bool:
    """Whether the claim resumes; refuses a folder with files unless told to replace it."""
    if not target.is_dir():
        return False
    if not os.access(target, os.W_OK | os.X_OK):
        raise OutputError(f"{path} is read-only", field=option)
    entries = sorted(p.name for p in target.iterdir())
    if not entries:
        return False
    if resumable is not None and resumable(target):
        return True
    if overwrite:
        return False
    described = _describe(target, entries)
    raise OutputError(
        f"{path} already holds {described}; pass --overwrite to replace it, "
        "or choose another folder",
        field=option,
    )


def _describe(target: Path, entries: list[str]) -> str:
    try:
        manifest = json.loads((target / MANIFEST).read_text(encoding="utf-8"))
        return f"a {manifest['kind']} written {manifest['created']}"
    except (OSError, ValueError, KeyError, TypeError):
        count = f"{len(entries)} entries" if len(entries) > 1 else "1 entry"
        return f"{count} ({', '.join(entries[:3])}{', ...' if len(entries) > 3 else ''})"


# --------------------------------------------------------------------------- reading


@dataclass
class VerifiedFolder:
    """A folder checked against its manifest, its files read through one folder handle.

    Reading by :meth:`open` (relative to the handle, not the path) sees the folder that
    was verified even if another run replaces it meanwhile.
    """

    path: Path
    manifest: dict[str, Any]
    _fd: int | None

    @property
    def kind(self) -> str:
        return str(self.manifest["kind"])

    def open(self, name: str) -> IO[bytes]:
        """One of the folder's files, opened for reading."""
        if self._fd is None:
            return open(self.path / name, "rb")

        def opener(relative: str, flags: int) -> int:
            return os.open(relative, flags, dir_fd=self._fd)

        return open(name, "rb", opener=opener)

    def file(self, name: str) -> Path:
        """The path of one of the folder's files (for messages)."""
        return self.path / name

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> VerifiedFolder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def existing_folder(path: str | Path) -> Path:
    """Where the output folder ``path`` is: ``path`` itself, or the old folder set aside
    by a swap that died halfway; a place that is no folder is a :class:`CorruptFileError`.

    Cheap (no file is read): for checking a folder before anything is claimed in it.
    """
    shown = Path(path)
    place = Path(os.path.abspath(shown))
    if not place.exists():
        previous = _hidden(place, "previous")
        if previous.is_dir():  # a two-rename swap died halfway: the old run is complete
            return previous
        raise CorruptFileError("folder not found", file=shown)
    if not place.is_dir():
        raise CorruptFileError("a file, not an output folder", file=shown)
    return shown


def open_folder(
    path: str | Path, kinds: Sequence[str], required: Sequence[str] = ()
) -> VerifiedFolder:
    """Open an output folder of one of ``kinds`` and check every file against its manifest.

    Raises :class:`CorruptFileError` naming the file for a folder that is missing, not
    finished, of another kind, or whose files are missing, truncated or changed.
    """
    shown = Path(path)
    place = existing_folder(shown)
    use_fd = os.open in os.supports_dir_fd and sys.platform != "win32"
    fd = os.open(place, os.O_RDONLY) if use_fd else None
    folder = VerifiedFolder(shown, {}, fd)
    try:
        folder.manifest = _read_manifest(folder, shown)
        if folder.manifest["kind"] not in kinds:
            wanted = " or ".join(kinds)
            raise CorruptFileError(
                f"a {folder.manifest['kind']} folder, not a {wanted} folder", file=shown
            )
        files = folder.manifest["files"]
        for name in required:
            if name not in files:
                raise CorruptFileError(
                    f"not a {folder.kind} folder: the manifest lists no {name}", file=shown
                )
        for name, entry in files.items():
            _check_file(folder, name, entry)
    except BaseException:
        folder.close()
        raise
    return folder


def _read_manifest(folder: VerifiedFolder, shown: Path) -> dict[str, Any]:
    where = shown / MANIFEST
    try:
        with folder.open(MANIFEST) as handle:
            raw = handle.read(10_000_000)
    except FileNotFoundError:
        raise CorruptFileError(
            "missing: not a finished rescue-sim output folder (interrupted, or written "
            "by another program); run it again",
            file=where,
        ) from None
    except OSError as exc:
        raise CorruptFileError(f"cannot read: {exc.strerror or exc}", file=where) from None
    try:
        manifest: Any = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise CorruptFileError(f"corrupt: not JSON ({exc})", file=where) from None
    valid = (
        isinstance(manifest, dict)
        and manifest.get("format") == MANIFEST_FORMAT
        and isinstance(manifest.get("kind"), str)
        and isinstance(manifest.get("files"), dict)
        and all(
            isinstance(e, dict)
            and isinstance(e.get("bytes"), int)
            and isinstance(e.get("sha256"), str)
            for e in manifest["files"].values()
        )
    )
    if not valid:
        raise CorruptFileError("not a rescue-sim manifest", file=where)
    if manifest.get("version") != MANIFEST_VERSION:
        raise CorruptFileError(
            f"manifest version {manifest.get('version')!r}; this rescue-sim reads "
            f"version {MANIFEST_VERSION}",
            file=where,
        )
    checked: dict[str, Any] = manifest
    return checked


def _check_file(folder: VerifiedFolder, name: str, entry: Mapping[str, Any]) -> None:
    where = folder.file(name)
    if Path(name).is_absolute() or ".." in Path(name).parts:
        raise CorruptFileError("the manifest names a file outside its folder", file=where)
    try:
        with folder.open(name) as handle:
            size, sha256 = file_digest(handle)
    except FileNotFoundError:
        raise CorruptFileError("missing (the manifest lists it)", file=where) from None
    except OSError as exc:
        raise CorruptFileError(f"cannot read: {exc.strerror or exc}", file=where) from None
    if size != entry["bytes"]:
        raise CorruptFileError(
            f"{size:,} bytes where the manifest says {entry['bytes']:,}: truncated or changed "
            "since it was written",
            file=where,
        )
    if sha256 != entry["sha256"]:
        raise CorruptFileError(
            "its SHA-256 differs from the manifest: changed since it was written", file=where
        )
