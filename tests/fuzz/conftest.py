"""Keep hypothesis' caches out of the checkout: its home is a temporary folder."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis.configuration import set_hypothesis_home_dir

# The example database is off (FUZZ); this moves the constants and Unicode caches.
set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "fednet-hypothesis")
