"""Files on disk to arrays and back: MRC, MRC stacks, TIFF, movies; no torch here."""
