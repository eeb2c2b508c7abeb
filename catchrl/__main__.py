"""``python -m catchrl``: the same as the ``catchrl`` command."""

import sys

from catchrl.cli import main

sys.exit(main())
