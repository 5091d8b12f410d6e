"""The Train widget's settings form, generated from the config dataclasses.

:class:`ConfigForm` iterates the config's field descriptions (``config.FIELDS``) and picks
a widget from each one's kind and limits (``min``/``max`` → spin box limits, a choice →
combo box showing each choice's words, a bool → check box, an optional int → spin box where 0
means "none", ``zero`` → spin box where 0 means that default, e.g. the preset's); labels
are the fields' words (:attr:`~napari_cryoden.config.spec.FieldSpec.title`), tooltips their
``help``.
The data source (layers or folders) is :mod:`.data_form`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from magicgui.widgets import CheckBox, ComboBox, FloatSpinBox, LineEdit, SpinBox

from napari_cryoden._qt.train.data_form import LAYER_SPLIT_HELP
from napari_cryoden.config.sections import FIELDS, SECTIONS, Config, FieldSpec

if TYPE_CHECKING:
    from magicgui.widgets.bases import ValueWidget

__all__ = ["GUI_DEFAULTS", "BASIC_FIELDS", "ConfigForm"]

_SPECS = {spec.key: spec for spec in FIELDS}
GUI_DEFAULTS: dict[str, Any] = {"data.patch_size": 128, "train.epochs": 30, "train.lr": 2e-3}
"""Defaults for training on one micrograph in the viewer (measured on the sample: 31.3 dB, vs
30.1 dB for the best Gaussian blur; patch 256 / 10 epochs gave 27.2 dB); the config dataclasses
keep their own defaults."""
BASIC_FIELDS = ("train.mode", "data.patch_size", "data.val_fraction", "train.epochs",
                "train.batch_size", "train.lr", "train.device")
"""Fields shown up front; every other field goes under "Advanced" (collapsed)."""
_LARGEST = 1_000_000


def field_widget(spec: FieldSpec, value: Any) -> ValueWidget:
    """A magicgui widget for one config field, initialised to ``value``."""
    kw: dict[str, Any] = {"name": spec.name, "label": spec.title, "tooltip": spec.help}
    largest = _LARGEST if spec.max is None else spec.max
    if spec.kind == "choice":  # the field's words shown, the config's value kept
        choices = [(spec.choice_title(choice), choice) for choice in spec.choices]
        return ComboBox(value=value, choices=choices, **kw)
    if spec.kind == "bool":
        return CheckBox(value=value, **kw)
    if spec.kind == "int" and spec.optional:  # 0 stands for None ("whole patch")
        kw["tooltip"] += " 0 = whole patch."
        kw["label"] += " (0 = whole patch)"
        return SpinBox(value=value or 0, min=0, max=largest, **kw)
    if spec.kind == "int" and spec.zero is not None:  # 0 stands for a default, e.g. the preset's
        kw["label"] += f" (0 = {spec.zero})"
        return SpinBox(value=value, min=0, max=largest, **kw)
    if spec.kind == "int":
        return SpinBox(value=value, min=0 if spec.min is None else spec.min, max=largest, **kw)
    if spec.kind == "float":
        step = 10 ** math.floor(math.log10(value)) / 10 if value > 0 else 0.01
        return FloatSpinBox(value=value, min=0.0 if spec.min is None else spec.min,
                            max=float(largest), step=step, **kw)
    return LineEdit(value=str(value), **kw)


class ConfigForm:
    """Every field of :class:`~napari_cryoden.config.sections.Config` as a labelled magicgui widget.

    ``widget(key)`` gives the widget of ``"section.field"``; :meth:`config` validates the form.
    The widgets of :data:`BASIC_FIELDS` are built at once and listed in :attr:`basic`; the
    others are built on first use (:meth:`advanced`, ``widget(key)``): until then the form
    reads their starting values, so a panel whose "Advanced" section was never opened trains
    with the same settings as one where it was (and opens in less time: item 7 of issue 14).
    """

    def __init__(self, defaults: dict[str, Any] | None = None) -> None:
        self._initial = {spec.key: spec.default for spec in FIELDS}
        self._initial.update({**GUI_DEFAULTS, **(defaults or {})})
        self._widgets: dict[str, ValueWidget] = {}
        self.basic = [self.widget(spec.key) for spec in FIELDS if spec.key in BASIC_FIELDS]
        val_fraction = self.widget("data.val_fraction")
        val_fraction.tooltip = f"{val_fraction.tooltip or ''} {LAYER_SPLIT_HELP}"

    def widget(self, key: str) -> ValueWidget:
        """The widget of ``"section.field"``, e.g. ``form.widget("train.epochs")``."""
        if key not in self._widgets:
            self._widgets[key] = field_widget(_SPECS[key], self._initial[key])
        return self._widgets[key]

    def unbuilt(self) -> list[str]:
        """The keys of the fields whose widgets are not built yet, in the form's order."""
        return [spec.key for spec in FIELDS if spec.key not in self._widgets]

    def advanced(self) -> list[ValueWidget]:
        """The widgets of the fields not in :data:`BASIC_FIELDS`, built now if not yet."""
        return [self.widget(spec.key) for spec in FIELDS if spec.key not in BASIC_FIELDS]

    def values(self) -> dict[str, dict[str, Any]]:
        """The form as nested dicts, the layout of :meth:`Config.to_dict`."""
        out: dict[str, dict[str, Any]] = {section: {} for section, _ in SECTIONS}
        for spec in FIELDS:
            built = self._widgets.get(spec.key)
            value = self._initial[spec.key] if built is None else built.value
            if spec.optional:  # the widget shows None as 0
                value = int(value or 0) or None
            out[spec.section][spec.name] = value
        return out

    def config(self) -> Config:
        """The validated config; raises :class:`~napari_cryoden.config.sections.ConfigError`."""
        return Config.from_dict(self.values())
