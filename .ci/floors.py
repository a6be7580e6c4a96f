"""Print pip constraints that pin each base dependency to its floor's series.

    python .ci/floors.py setup.cfg > constraints.txt

``aiohttp>=3.14`` in setup.cfg's ``install_requires`` becomes
``aiohttp==3.14.*``: the oldest release series fednet says it works with,
with that series' fixes. Environment markers are kept. A requirement without
a ``>=`` floor is an error, so every dependency states one.
"""

from __future__ import annotations

import configparser
import re
import sys

_FLOOR = re.compile(r"^([A-Za-z0-9._-]+)>=([0-9]+(?:\.[0-9]+)?)(?:\.[0-9]+)*\s*(;.*)?$")


def constraints(path: str) -> list[str]:
    """Return one ``name==X.Y.*`` line per install requirement of setup.cfg."""
    config = configparser.ConfigParser()
    config.read(path)
    lines = []
    for requirement in config["options"]["install_requires"].strip().splitlines():
        match = _FLOOR.match(requirement.strip())
        if match is None:
            raise SystemExit(f"{path}: no >= floor in {requirement!r}")
        name, series, marker = match.groups()
        lines.append(f"{name}=={series}.*{marker or ''}")
    return lines


if __name__ == "__main__":
    print("\n".join(constraints(sys.argv[1])))
