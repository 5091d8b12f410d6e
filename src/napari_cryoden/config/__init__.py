"""The training configuration: sections, presets and command-line flags.

``from napari_cryoden.config import Config`` is the usual entry; the sections live in
:mod:`.sections`, each field's typed description (:class:`FieldSpec`) in :mod:`.spec`, the
field <-> flag mapping in :mod:`.flags`, the architecture presets in :mod:`.presets`. Nothing
here imports torch.
"""

from .sections import (
    DEVICES,
    FIELDS,
    MODES,
    NORMALIZATIONS,
    PRECISIONS,
    SCHEDULES,
    SECTIONS,
    Config,
    ConfigError,
    DataConfig,
    FieldSpec,
    ModelConfig,
    TrainConfig,
    field_help,
)

__all__ = [
    "NORMALIZATIONS", "DEVICES", "PRECISIONS", "SCHEDULES", "MODES", "ConfigError", "ModelConfig",
    "DataConfig", "TrainConfig", "Config", "FieldSpec", "SECTIONS", "FIELDS", "field_help",
]
