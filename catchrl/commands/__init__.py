"""One module per ``catchrl`` sub-command (see :mod:`catchrl.cli`)."""
