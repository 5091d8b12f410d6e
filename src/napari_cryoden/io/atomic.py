"""Atomic file writes: a crash, a kill or a full disk never leaves a half-written file.

Every file the package writes (weights, history, reports, MRC outputs) goes to a temporary file
``.<name>.<pid>@<host>.<random>.tmp`` in the destination folder, is flushed and fsynced, then
renamed over the destination; the folder is fsynced so the rename itself is durable. On any
error the temporary file is removed, the previous file, if any, is untouched, and a one-line
:class:`~napari_cryoden.errors.SaveError` names the file and the problem (``disk full while
saving``…). A process killed mid-write (SIGKILL, power loss) leaves its hidden temporary file
behind: readers never look at hidden files, and :func:`atomic_write_bytes` (or
``atomic_path(..., clean_stale=True)``) removes the temporary files of the same destination whose
writer process on this host is gone.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

from ..errors import SaveError

__all__ = ["atomic_path", "atomic_write_bytes", "fsync_folder", "save_error"]

_HOST = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:40] or "host"
_NAME_CHARS = 100  # of the destination's name kept in the temporary name (255-byte limit)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], *, clean_stale: bool = False) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on a clean exit it replaces ``path`` durably.

    Parameters
    ----------
    path
        The destination; its folder must exist.
    clean_stale
        First remove temporary files of ``path`` left by killed writers on this host (costs a
        listing of the folder, so meant for run folders rather than folders of outputs).

    Raises
    ------
    SaveError
        Creating, writing (in the ``with`` block), syncing or renaming failed with an OSError.
    """
    path = Path(path)
    if clean_stale:
        remove_stale_temps(path)
    try:
        fd, name = tempfile.mkstemp(prefix=_prefix(path) + f"{os.getpid()}@{_HOST}.",
                                    suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise save_error(path, exc) from None
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except SaveError:
        raise
    except OSError as exc:
        raise save_error(path, exc) from exc
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
    fsync_folder(path.parent)


def atomic_write_bytes(path: str | os.PathLike[str], payload: bytes, *,
                       clean_stale: bool = True) -> None:
    """Write ``payload`` to ``path`` atomically (see the module docstring).

    Used for checkpoints, histories and reports, which live in small folders, so stale
    temporary files of ``path`` are cleaned first by default.
    """
    with atomic_path(path, clean_stale=clean_stale) as tmp:
        fd = os.open(tmp, os.O_WRONLY | os.O_TRUNC | getattr(os, "O_BINARY", 0))
        try:
            view = memoryview(payload).cast("B")
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)


def save_error(path: Path, exc: OSError) -> SaveError:
    """Build a one-line :class:`SaveError` for a failed write of ``path`` (errno kept)."""
    code = exc.errno
    if code in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        problem = "disk full while saving (free some space, then save again)"
    elif code in (errno.EACCES, errno.EPERM):
        problem = f"permission denied (is {path.parent} writable?)"
    elif code == errno.EROFS:
        problem = "read-only file system"
    elif code in (errno.ENOENT, errno.ENOTDIR) and not path.parent.is_dir():
        problem = f"folder {path.parent} does not exist"
    else:
        text = (exc.strerror or str(exc) or type(exc).__name__).strip().splitlines()
        problem = text[0] if text else type(exc).__name__
    error = SaveError(f"{path}: cannot write: {problem}; any previous {path.name} is intact")
    error.errno = code
    return error


def remove_stale_temps(path: str | os.PathLike[str]) -> list[Path]:
    """Remove ``path``'s temporary files whose writer (a process on this host) is gone.

    Returns the files removed. Temporary files of live processes, of other hosts (a shared
    file system) or of names that do not parse are left alone.
    """
    path = Path(path)
    if os.name != "posix" or not path.parent.is_dir():
        return []
    prefix = _prefix(path)
    pattern = re.compile(re.escape(prefix) + r"(\d+)@([A-Za-z0-9-]+)\.[^.]+\.tmp\Z")
    removed = []
    with contextlib.suppress(OSError):
        for entry in os.scandir(path.parent):
            match = pattern.match(entry.name) if entry.name.startswith(prefix) else None
            if match and match[2] == _HOST and not _alive(int(match[1])):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
                    removed.append(Path(entry.path))
    return removed


def _prefix(path: Path) -> str:
    return f".{path.name[:_NAME_CHARS]}."


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (POSIX); a no-op where folders cannot be opened.

    Parameters
    ----------
    folder
        The folder whose entries changed.
    """
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
