"""Qt-free matplotlib figures that the CLI saves and the widgets show."""
