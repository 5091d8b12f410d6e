"""One typed description per config field: the kind of value it holds, its limits and its help.

:func:`field_specs` reads a config section's dataclass fields once (their annotation and the
``metadata`` they were declared with) into :class:`FieldSpec` records. The config's own checks,
the command-line flags (:mod:`.flags`) and the napari Train widget's form all dispatch on
:attr:`FieldSpec.kind` rather than on annotation strings, so a field type is understood in one
place: a field whose annotation is not listed in :data:`_ANNOTATIONS` fails at import.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ..errors import CryodenError
from .words import CHOICE_LABELS, LABELS

__all__ = ["Kind", "ConfigError", "FieldSpec", "check_ranges", "field_specs",
           "section_from_dict"]



class ConfigError(CryodenError, ValueError):
    """A configuration value is missing, unknown or out of range."""


Kind = Literal["int", "float", "bool", "choice", "str"]

_ANNOTATIONS: dict[str, tuple[Kind, bool]] = {
    "int": ("int", False), "int | None": ("int", True), "float": ("float", False),
    "bool": ("bool", False), "str": ("str", False),
}
"""Annotation as written (``from __future__ import annotations``) → (kind, None allowed)."""

_PYTHON_TYPES: dict[Kind, tuple[type, ...]] = {
    "int": (int,), "float": (int, float), "bool": (bool,), "str": (str,), "choice": (str,),
}


@dataclass(frozen=True)
class FieldSpec:
    """What one config field holds, e.g. ``train.batch_size``: an int >= 0, help, default.

    ``kind`` is ``"choice"`` for a string restricted to ``choices``. ``optional`` fields may
    be None (their default). ``zero`` names what 0 stands for (e.g. ``"preset's"``) where
    0 is allowed below ``min`` as "take the default". ``label`` and ``choice_labels`` are the
    words a form shows for the field and its choices (the key, the flag and the stored values
    stay the developer's words).
    """

    section: str
    name: str
    kind: Kind
    default: Any
    help: str
    optional: bool = False
    min: float | None = None
    max: float | None = None
    choices_from: Collection[str] = field(default=(), compare=False)
    zero: str | None = None
    label: str = ""
    choice_labels: Mapping[str, str] = field(default_factory=dict, compare=False)

    @property
    def title(self) -> str:
        """The field's name in a form, e.g. ``"learning rate"`` for ``train.lr``."""
        return self.label or self.name.replace("_", " ")

    def choice_title(self, value: str) -> str:
        """Return the words a form shows for a choice, e.g. ``"mean/std"`` for ``meanstd``.

        Parameters
        ----------
        value
            One of :attr:`choices`.

        Returns
        -------
        str
            Its label, or the value itself where it has none.
        """
        return self.choice_labels.get(value, value)

    @property
    def choices(self) -> tuple[str, ...]:
        """The allowed values, read now: a registry (the presets) may have grown since."""
        return tuple(self.choices_from)

    @property
    def key(self) -> str:
        """``"section.name"``, e.g. ``"train.batch_size"``."""
        return f"{self.section}.{self.name}"

    @property
    def flag(self) -> str:
        """The command-line flag, e.g. ``"--batch-size"``."""
        return "--" + self.name.replace("_", "-")

    @property
    def type_name(self) -> str:
        """The type as error messages name it.

        ``int``, ``float``, ``bool`` or ``str`` (choices too), with ``| None`` appended for an
        optional field, e.g. ``int | None``.
        """
        base = "str" if self.kind == "choice" else self.kind
        return f"{base} | None" if self.optional else base

    def accepts_type(self, value: Any) -> bool:
        """Whether ``value`` has a type this field takes (an int is a float; a bool is no int)."""
        allowed = _PYTHON_TYPES[self.kind] + ((type(None),) if self.optional else ())
        if isinstance(value, bool) and bool not in allowed:
            return False
        return isinstance(value, allowed)


def field_specs(section: str, cls: type) -> tuple[FieldSpec, ...]:
    """Describe every field of the config section dataclass ``cls``, named ``section``.

    Parameters
    ----------
    section
        The section's name in :class:`~.sections.Config`, e.g. ``"train"``.
    cls
        The section's dataclass; each field's ``metadata`` holds ``help`` and optionally
        ``min``, ``max``, ``choices`` and ``zero``.

    Returns
    -------
    tuple of FieldSpec
        One per field, in declaration order.
    """
    return tuple(_spec(section, f) for f in dataclasses.fields(cls))


def _spec(section: str, f: dataclasses.Field) -> FieldSpec:
    try:
        kind, optional = _ANNOTATIONS[str(f.type)]
    except KeyError:
        raise TypeError(f"{section}.{f.name}: unsupported annotation {f.type!r}") from None
    meta = f.metadata
    choices = meta.get("choices", ())
    key = f"{section}.{f.name}"
    return FieldSpec(section=section, name=f.name, kind="choice" if choices else kind,
                     default=f.default, help=str(meta.get("help", "")), optional=optional,
                     min=meta.get("min"), max=meta.get("max"), choices_from=choices,
                     zero=meta.get("zero"), label=LABELS.get(key, ""),
                     choice_labels=CHOICE_LABELS.get(key, {}))


def section_from_dict(kind: type, values: Any, name: str,
                      specs: Mapping[str, FieldSpec]) -> Any:
    """Build the section dataclass ``kind`` from a dict, refusing unknown keys and bad types.

    Parameters
    ----------
    kind
        The section's dataclass.
    values
        Its fields by name; missing ones take their defaults.
    name
        The section's name, for messages.
    specs
        Every field's description by key (``"section.name"``).

    Returns
    -------
    Any
        The section (its own checks ran in ``__post_init__``).

    Raises
    ------
    ConfigError
        Not a mapping, an unknown key, or a value of the wrong type; one line.
    """
    if not isinstance(values, dict):
        raise ConfigError(f"config section {name!r} must be a mapping")
    known = {f.name for f in dataclasses.fields(kind)}
    unknown = set(values) - known
    if unknown:
        raise ConfigError(f"unknown key(s) in {name}: {', '.join(sorted(unknown))}")
    for key, value in values.items():
        spec = specs[f"{name}.{key}"]
        if not spec.accepts_type(value):
            raise ConfigError(f"{name}.{key} must be {spec.type_name}, got {value!r}")
        if spec.kind == "float":
            values = {**values, key: float(value)}
    return kind(**values)


def check_ranges(name: str, section: Any, specs: Mapping[str, FieldSpec]) -> None:
    """Raise :class:`ConfigError` for the first number of ``section`` outside its limits.

    Parameters
    ----------
    name
        The section's name, e.g. ``"train"``.
    section
        The section's dataclass instance.
    specs
        Every field's description by key (``"section.name"``).
    """
    for f in dataclasses.fields(section):
        value = getattr(section, f.name)
        if value is None or isinstance(value, (bool, str)):
            continue  # choices are checked by the section's own validate()
        spec = specs[f"{name}.{f.name}"]
        if spec.min is not None and value < spec.min:
            raise ConfigError(f"{spec.key} must be >= {spec.min}, got {value}")
        if spec.max is not None and value > spec.max:
            raise ConfigError(f"{spec.key} must be <= {spec.max}, got {value}")
