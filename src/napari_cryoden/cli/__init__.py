"""The ``cryoden`` command line: each command parses its flags and delegates to the core.

:mod:`.main` holds ``main(argv) -> int`` and the table of commands; the commands live in
:mod:`.datasets`, :mod:`.train`, :mod:`.denoise` and :mod:`.weights`. Config fields become
``train`` flags through :mod:`napari_cryoden.config.flags`.
"""
