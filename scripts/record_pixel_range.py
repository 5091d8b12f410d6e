"""Record the pixel-size range a weight file was trained on, leaving its tensors byte for byte.

Usage: ``python scripts/record_pixel_range.py WEIGHTS.safetensors LOW HIGH``

The shipped models (``src/napari_cryoden/models/pretrained/``) were trained before checkpoints
recorded ``pixel_size_range``; their recipe (``scripts/train_general_model.sh``) simulated
0.6–2.5 Å/px, so both got ``[0.6, 2.5]`` with this script. Only the JSON header changes: the
tensor bytes after it are copied unchanged (the script checks it), so every output is identical.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

from napari_cryoden.models.header import META_KEY, PIXEL_RANGE_KEY, read_weight_info


def record(path: Path, low: float, high: float) -> None:
    """Rewrite ``path``'s cryoden metadata with ``pixel_size_range = [low, high]``."""
    payload = path.read_bytes()
    length = int.from_bytes(payload[:8], "little")
    header, data = json.loads(payload[8:8 + length]), payload[8 + length:]
    meta = json.loads(header["__metadata__"][META_KEY])
    meta[PIXEL_RANGE_KEY] = [float(low), float(high)]
    header["__metadata__"][META_KEY] = json.dumps(meta)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # safetensors aligns the data to 8 bytes
    path.write_bytes(len(text).to_bytes(8, "little") + text + data)
    new = path.read_bytes()
    if hashlib.sha256(new[8 + len(text):]).digest() != hashlib.sha256(data).digest():
        raise SystemExit(f"{path}: tensor bytes changed")
    print(f"{path}: pixel_size_range {read_weight_info(path).pixel_size_range}")


if __name__ == "__main__":
    record(Path(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]))
