"""Cold sequential disk reads: evicting a file from the page cache and timing a plain read.

``python benchmarks/_disk.py DIR [--gb 8]`` writes a file of ``--gb`` GB in DIR, evicts it and
reads it back cold, then warm, printing GB/s for both.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

_CHUNK = 64 << 20


def evict(path: str | os.PathLike[str]) -> str:
    """Drop a file's pages from the page cache; returns how ('drop_caches' or 'fadvise').

    Tries the system-wide ``/proc/sys/vm/drop_caches`` (root only) after a sync, then falls back
    to ``posix_fadvise(DONTNEED)`` on the file, which needs no privileges.
    """
    os.sync()
    how = "fadvise"
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        how = "drop_caches"
    except OSError:
        pass
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
    return how


def read_rate(path: str | os.PathLike[str]) -> float:
    """GB/s of one sequential pass over the file with 64 MB reads."""
    buffer = bytearray(_CHUNK)
    view = memoryview(buffer)
    total = 0
    start = time.perf_counter()
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(view):
            total += n
    return total / (time.perf_counter() - start) / 1e9


def write_file(path: Path, gb: float) -> None:
    block = os.urandom(_CHUNK)
    with open(path, "wb") as f:
        for _ in range(max(1, int(gb * 1e9 / _CHUNK))):
            f.write(block)
        f.flush()
        os.fsync(f.fileno())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("folder", type=Path)
    parser.add_argument("--gb", type=float, default=8.0)
    args = parser.parse_args()
    path = args.folder / "cryoden_disk_probe.bin"
    write_file(path, args.gb)
    how = evict(path)
    cold = read_rate(path)
    warm = read_rate(path)
    path.unlink()
    print(f"disk {args.folder}: cold read {cold:.2f} GB/s (evicted by {how}), "
          f"warm {warm:.2f} GB/s, {args.gb:g} GB file")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
