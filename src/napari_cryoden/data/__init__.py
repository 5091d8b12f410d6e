"""Micrographs on disk → patches in memory: file I/O, normalisation, patch index and streaming.

Import the submodules directly (``from napari_cryoden.data.io import read_image``); this package
imports nothing itself so that ``data.io`` stays usable without torch.
"""
