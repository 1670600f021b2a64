"""Writing report files so no reader ever sees half of one: temp file, fsync, rename.

Split out of ``reports`` (which renders) because it is a different job with its own failure
modes; ``reports`` re-exports these names so callers keep one import.
"""
from __future__ import annotations

import errno
import itertools
import os
import re
import stat
import tempfile
import time
from pathlib import Path
from typing import Any

__all__ = ["sweep_stale", "write_atomic", "write_atomic_dirs", "write_atomic_many"]


def write_atomic(path: str | os.PathLike[str], data: bytes | str) -> None:
    """Write ``data`` so a reader (Jenkins, an LMS upload) never sees a half-written report.

    Temp file in the same directory (same filesystem, so ``os.replace`` is atomic), fsync, then
    replace; the directory is fsynced too so the rename survives a crash. An existing file's mode
    is kept; a new one gets 0644 instead of ``mkstemp``'s 0600.
    """
    target = Path(path)
    write_atomic_many(target.parent if str(target.parent) else Path("."), [(target.name, data)])


def write_atomic_many(directory: str | os.PathLike[str], files: list[tuple[str, bytes | str]]) -> None:
    """Write several files of one directory atomically, in order, with one fsync per file and one
    for the directory after the last rename (not one per file: a batch writes thousands).

    Each file is complete on disk before its rename (so no reader ever sees half of one); what the
    single directory fsync leaves open is only which renames survive a crash, and a reader that
    needs all of them checks every file (``batch.complete`` parses each one)."""
    directory = Path(directory)
    for name, data in files:
        _replace(directory / name, _bytes(data))
    try:
        dir_fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


# Staged directories get names no namespace can have (a leading dot), unique per process and call.
_STAGED = itertools.count()


def write_atomic_dirs(root: Path, dirs: list[tuple[str, list[tuple[str, bytes | str]]]]) -> None:
    """Write a chunk of namespaces' directories under ``root``, each holding its files, so that no
    reader and no crash ever shows half of one, with one ``syncfs`` for the contents and one for
    the renames where Linux has it (an fsync per file and per directory cost more CPU and time
    than grading: 8 files a student, 2 fsyncs each).

    A directory that does not exist yet is built whole under a hidden name (``.NAME.PID-N.tmp``,
    which no namespace can have) and renamed into place: its files are written straight into it,
    with no temp file, ``stat`` or rename each, and the namespace appears complete at once. A
    directory that exists (a class graded again into the same ``--out``) has its files replaced
    one by one, a temp file beside each renamed over it, in the list's order: ``results.json``,
    listed last, still marks the namespace done. Every file's data is on disk before any rename.
    A name that is not a plain directory (a symbolic link could lead out of ``root``) raises
    ValueError before anything is written. Interrupted, what was not renamed is removed."""
    syncfs = _syncfs()
    if syncfs is None:          # no syncfs: fsync per file and directory, as write_atomic_many does
        for name, files in dirs:
            if not _existing_dir(root, name):
                os.mkdir(root / name)
            write_atomic_many(root / name, files)
        return
    existing = [_existing_dir(root, name) for name, _ in dirs]
    staged: list[tuple[str, str, list[tuple[str, bytes | str]]]] = []
    temps: list[tuple[str, Path]] = []
    renamed: set[str] = set()
    root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for (name, files), there in zip(dirs, existing):
            if not there:
                tmp = f".{name}.{os.getpid()}-{next(_STAGED)}.tmp"
                os.mkdir(tmp, dir_fd=root_fd)
                staged.append((tmp, name, files))
                _fill(root_fd, tmp, files)
            else:
                temps += [(_write_temp(root / name / f, _bytes(data)), root / name / f) for f, data in files]
        if not staged and not temps:
            return
        syncfs(root)
        for tmp, name, files in staged:
            try:
                os.rename(tmp, name, src_dir_fd=root_fd, dst_dir_fd=root_fd)
            except OSError as e:    # someone made it meanwhile: replace its files one by one
                if e.errno not in (errno.EEXIST, errno.ENOTEMPTY, errno.ENOTDIR, errno.EISDIR) or not _existing_dir(root, name):
                    raise
                for f, _ in files:
                    os.replace(root / tmp / f, root / name / f)
                os.rmdir(tmp, dir_fd=root_fd)
            renamed.add(tmp)
        for tmp_file, path in temps:
            os.replace(tmp_file, path)
            renamed.add(tmp_file)
        syncfs(root)
    finally:
        try:        # best effort: a failure here must not hide why the write stopped
            for tmp, _, files in staged:
                if tmp not in renamed:
                    _remove_staged(root_fd, tmp, files)
            for tmp_file, _ in temps:
                if tmp_file not in renamed:
                    try:
                        os.unlink(tmp_file)
                    except FileNotFoundError:
                        pass
        except OSError:
            pass
        finally:
            os.close(root_fd)


# What a writer killed mid-chunk (SIGKILL, a power cut) leaves in DIR: a staged directory or a
# temp file, each named by this module. Either lives for one chunk's write, seconds: one older
# than this is no live writer's, whichever host or process made it.
STALE_AFTER = 600.0
_STAGED_NAME = re.compile(r"\..+\.\d+-\d+\.tmp")
_TEMP_NAME = re.compile(r"\..+\.[a-z0-9_]{8}\.tmp")      # tempfile.mkstemp's 8 random characters
_REPORT_NAME = re.compile(r"[^/]+\.xml|results\.json")


def sweep_stale(root: Path, older_than: float = STALE_AFTER, now: float | None = None) -> list[str]:
    """Remove what an interrupted writer left directly in ``root``, older than ``older_than``
    seconds: staged directories holding only report files (anything else in one, and it stays)
    and temp files, named as this module names them. Nothing else is touched, and a failure
    leaves the entry as it was. Returns the names removed."""
    now = time.time() if now is None else now
    removed: list[str] = []
    try:
        entries = list(os.scandir(root))
    except OSError:
        return removed
    for entry in entries:
        name = entry.name
        if not (name.startswith(".") and name.endswith(".tmp")):
            continue
        try:
            st = entry.stat(follow_symlinks=False)
            if now - st.st_mtime < older_than:
                continue
            if stat.S_ISDIR(st.st_mode) and _STAGED_NAME.fullmatch(name):
                inside = list(os.scandir(entry.path))
                if not all(_REPORT_NAME.fullmatch(f.name) and f.is_file(follow_symlinks=False) for f in inside):
                    continue
                for f in inside:
                    os.unlink(f.path)
                os.rmdir(entry.path)
            elif stat.S_ISREG(st.st_mode) and _TEMP_NAME.fullmatch(name):
                os.unlink(entry.path)
            else:
                continue
            removed.append(name)
        except OSError:
            continue
    return removed


def _existing_dir(root: Path, name: str) -> bool:
    """Whether ``root/name`` exists; ValueError if it is anything but a directory (a link to one too)."""
    try:
        st = os.lstat(root / name)
    except FileNotFoundError:
        return False
    if not stat.S_ISDIR(st.st_mode):
        raise ValueError(f"refusing to write reports outside {root}: {name!r} is not a directory")
    return True


def _bytes(data: bytes | str) -> bytes:
    return data.encode("utf-8") if isinstance(data, str) else data


def _fill(root_fd: int, directory: str, files: list[tuple[str, bytes | str]]) -> None:
    """Write new files into a directory this call created (nobody else's: no temp names needed)."""
    dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY, dir_fd=root_fd)
    try:
        for name, data in files:
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644, dir_fd=dir_fd)
            try:
                rest = memoryview(_bytes(data))
                while rest:
                    rest = rest[os.write(fd, rest):]
                os.fchmod(fd, 0o644)    # as write_atomic gives a new file, whatever the umask
            finally:
                os.close(fd)
    finally:
        os.close(dir_fd)


def _remove_staged(root_fd: int, directory: str, files: list[tuple[str, bytes | str]]) -> None:
    try:
        dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY, dir_fd=root_fd)
    except FileNotFoundError:
        return
    try:
        for name, _ in files:
            try:
                os.unlink(name, dir_fd=dir_fd)
            except FileNotFoundError:
                pass
    finally:
        os.close(dir_fd)
    os.rmdir(directory, dir_fd=root_fd)


def _write_temp(target: Path, payload: bytes) -> str:
    """A new temp file beside ``target`` holding ``payload`` (not flushed), with the mode ``target``
    has (0644 for a new file)."""
    try:
        mode = target.stat().st_mode & 0o7777
    except FileNotFoundError:
        mode = 0o644
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        rest = memoryview(payload)
        while rest:
            rest = rest[os.write(fd, rest):]
        os.fchmod(fd, mode)
    except BaseException:
        os.close(fd)
        os.unlink(tmp)
        raise
    os.close(fd)
    return tmp


def _syncfs() -> Any:
    """``syncfs(2)`` of the filesystem holding a directory, or None where there is none."""
    global _SYNCFS
    if _SYNCFS is False:
        import ctypes
        try:
            # the interpreter's own symbols, libc's among them: ``ctypes.util.find_library`` would
            # start ``ldconfig -p`` in the middle of a batch (a vfork of a process of hundreds of MB)
            libc = ctypes.CDLL(None, use_errno=True)
            call = libc.syncfs
        except (OSError, AttributeError):
            _SYNCFS = None
            return None

        def syncfs(directory: Path) -> None:
            fd = os.open(directory, os.O_RDONLY)
            try:
                if call(fd) != 0:
                    raise OSError(ctypes.get_errno(), f"syncfs {directory}")
            finally:
                os.close(fd)
        _SYNCFS = syncfs
    return _SYNCFS


_SYNCFS: Any = False


def _replace(target: Path, payload: bytes) -> None:
    """Temp file beside ``target``, written and fsynced, then renamed over it."""
    tmp = _write_temp(target, payload)
    try:
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
