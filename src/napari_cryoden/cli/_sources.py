"""The ``cryoden train`` flags that name what a run reads, as a typed :class:`TrainSources`."""

from __future__ import annotations

import argparse
import dataclasses

from ..data.sources import TrainSources

__all__ = ["sources_from_args"]


def sources_from_args(args: argparse.Namespace) -> TrainSources:
    """Collect ``--noisy/--clean/--even/--odd/--store/--val-noisy/--val-clean`` into sources.

    Parameters
    ----------
    args
        The parsed ``train`` command line (a flag not on it counts as not given).

    Returns
    -------
    TrainSources
        The folders and store given; nothing is checked yet (see
        :func:`~napari_cryoden.data.sources.training_data`).
    """
    return TrainSources(**{f.name: getattr(args, f.name, None)
                           for f in dataclasses.fields(TrainSources)})
