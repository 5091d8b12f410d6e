"""Datasets to training batches: pairs of files, patch indexes, normalisation, streaming, packs.

Files on disk are read by :mod:`napari_cryoden.io`; this package turns them into patches and
batches. Import the submodules directly; this package imports nothing itself.
"""
