"""A small on-disk cache of arrays under the user's cache folder, for results slow to remake.

Entries are ``.npz`` files in ``$XDG_CACHE_HOME/napari-cryoden`` (``~/.cache/napari-cryoden``
when the variable is unset), written atomically (:mod:`napari_cryoden.io.atomic`), so a reader
never sees half a file. A file that cannot be read back (truncated, corrupt, another format)
counts as missing: the caller remakes the arrays and rewrites it. Nothing here is needed for
correctness: a cache folder that cannot be written is skipped silently, at the cost of the
remaking time.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import SaveError
from .atomic import atomic_path

__all__ = ["cache_folder", "cache_key", "read_arrays", "write_arrays"]


def cache_folder() -> Path:
    """Return the package's cache folder (not created): ``$XDG_CACHE_HOME/napari-cryoden``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "napari-cryoden"


def cache_key(**parts: Any) -> str:
    """Return a short hex digest of ``parts`` (JSON-able values): the same parts, the same key."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def read_arrays(path: Path, names: tuple[str, ...]) -> dict[str, np.ndarray] | None:
    """Return the arrays ``names`` stored at ``path``, or ``None`` when missing or unreadable."""
    try:
        with np.load(path, allow_pickle=False) as stored:
            return {name: np.array(stored[name]) for name in names}
    except (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile):
        return None


def write_arrays(path: Path, arrays: dict[str, np.ndarray]) -> bool:
    """Store ``arrays`` at ``path`` atomically; ``False`` when the cache cannot be written."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp, open(tmp, "wb") as out:
            np.savez(out, **arrays)  # type: ignore[arg-type]  # (numpy stubs: allow_pickle)
    except (OSError, SaveError):
        return False
    return True
