"""Denoising whole micrographs and regions in tiles."""
