"""The napari face of napari-cryoden: the only package that imports Qt, superqt or napari.qt."""
