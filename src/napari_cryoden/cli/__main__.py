"""``python -m napari_cryoden.cli …`` runs the ``cryoden`` command (torchrun starts ranks so)."""

import sys

from .main import main

sys.exit(main())
