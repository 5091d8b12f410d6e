"""Config fields as command-line flags, in both directions, in one place.

Every field of :class:`~.sections.Config` is the flag ``--field-name`` (``train.batch_size`` is
``--batch-size``; field names are unique across sections, so flags are too):

- :func:`add_flags` adds them to a parser, one group per section, each help text the field's
  ``help`` and its default; every flag defaults to None, so "not given" stays visible;
- :func:`config_from_args` reads the flags given back, over a base config;
- :func:`config_to_argv` writes a config as flags (every field, booleans as ``--x``/``--no-x``),
  so a subprocess (a torchrun rank, the Train widget's run) trains exactly that config.
"""

from __future__ import annotations

import argparse
from typing import Any

from .sections import FIELDS, SECTIONS, Config
from .spec import FieldSpec

__all__ = ["add_flags", "config_from_args", "config_to_argv"]

_PARSERS: dict[str, type] = {"int": int, "float": float, "str": str, "choice": str}


def add_flags(parser: argparse.ArgumentParser) -> None:
    """Add a flag for every config field to ``parser``, grouped as "model options" etc.

    Parameters
    ----------
    parser
        The parser (e.g. ``cryoden train``'s) to add the flags to.
    """
    for section, _ in SECTIONS:
        group = parser.add_argument_group(f"{section} options")
        for spec in FIELDS:
            if spec.section == section:
                _add_flag(group, spec)


def _add_flag(group: Any, spec: FieldSpec) -> None:
    default = f"0 = the {spec.zero}" if spec.zero is not None else spec.default
    help_text = f"{spec.help} (default: {default})".replace("%", "%%")
    if spec.kind == "bool":
        group.add_argument(spec.flag, action=argparse.BooleanOptionalAction, default=None,
                           help=help_text)
        return
    group.add_argument(spec.flag, type=_PARSERS[spec.kind], default=None,
                       choices=spec.choices or None, help=help_text)


def config_from_args(args: argparse.Namespace, base: Config | None = None) -> Config:
    """Build the config: ``base`` (default: the defaults) overridden by the flags given.

    Parameters
    ----------
    args
        Parsed arguments of a parser that :func:`add_flags` built; a flag left out (None) or
        an attribute missing keeps ``base``'s value.
    base
        The config to start from.

    Returns
    -------
    Config
        The validated config; bad values raise :class:`~.sections.ConfigError`.
    """
    given: dict[str, dict[str, Any]] = {section: {} for section, _ in SECTIONS}
    for spec in FIELDS:
        value = getattr(args, spec.name, None)
        if value is not None:
            given[spec.section][spec.name] = value
    return (base or Config()).replace(**given)


def config_to_argv(config: Config) -> list[str]:
    """Write ``config`` as the flags that :func:`config_from_args` reads back to it.

    Read over the default base: an optional field at None (e.g. ``data.crop``) and an empty
    text field have no flag, so they take the base's value.

    Parameters
    ----------
    config
        The config to write.

    Returns
    -------
    list of str
        Every field's flag and value in :data:`~.sections.FIELDS` order; booleans as
        ``--x``/``--no-x``; an optional field at None (its default) and an empty text field
        (e.g. ``train.init``, off) are left out.
    """
    argv: list[str] = []
    for spec in FIELDS:
        value = getattr(getattr(config, spec.section), spec.name)
        if spec.kind == "bool":
            argv.append(spec.flag if value else "--no-" + spec.flag[2:])
        elif value is not None and value != "":
            argv += [spec.flag, str(value)]
    return argv
