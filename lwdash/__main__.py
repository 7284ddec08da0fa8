"""``python -m lwdash``: the command-line interface (see :mod:`lwdash.cli`)."""
from __future__ import annotations

import sys

from lwdash.cli import main

if __name__ == "__main__":
    sys.exit(main())
