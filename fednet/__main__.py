"""Entry point of ``python -m fednet``."""

from __future__ import annotations

import sys

from fednet.cli import main

if __name__ == "__main__":
    sys.exit(main())
