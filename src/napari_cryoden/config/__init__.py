"""The training configuration: sections, presets and command-line flags.

``from napari_cryoden.config import Config`` is the usual entry; the sections live in
:mod:`.sections`, the architecture presets in :mod:`.presets`. Nothing here imports torch.
"""

from .sections import (
    DEVICES,
    MODES,
    NORMALIZATIONS,
    PRECISIONS,
    SCHEDULES,
    Config,
    ConfigError,
    DataConfig,
    ModelConfig,
    TrainConfig,
    field_help,
)

__all__ = [
    "NORMALIZATIONS", "DEVICES", "PRECISIONS", "SCHEDULES", "MODES", "ConfigError", "ModelConfig",
    "DataConfig", "TrainConfig", "Config", "field_help",
]
