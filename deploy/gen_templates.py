"""Generate the fednet CloudFormation templates with troposphere.

Run ``python deploy/gen_templates.py`` to (re)write
``deploy/cloud_formation_simple.yaml`` and ``deploy/cloud_formation_complex.yaml``.
The YAML files are generated: edit this code, never the files.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

DEPLOY_DIR = Path(__file__).resolve().parent
if str(DEPLOY_DIR) not in sys.path:  # the stack modules live beside this file
    sys.path.insert(0, str(DEPLOY_DIR))

from cfn_complex import build_complex  # noqa: E402
from cfn_simple import build_simple  # noqa: E402
from troposphere import Template  # noqa: E402

logger = logging.getLogger(__name__)

STACKS = {
    "cloud_formation_simple.yaml": build_simple,
    "cloud_formation_complex.yaml": build_complex,
}


def render_templates() -> dict[str, str]:
    """Return each template's file name and its YAML text."""
    rendered = {}
    for name, build in STACKS.items():
        template: Template = build()
        rendered[name] = template.to_yaml()
    return rendered


def main(out_dir: Path = DEPLOY_DIR) -> list[Path]:
    """Write every template under ``out_dir``.

    Args:
        out_dir: Directory that receives the YAML files.

    Returns:
        The paths written.
    """
    written = []
    for name, text in render_templates().items():
        path = out_dir / name
        path.write_text(text, encoding="utf-8")
        logger.info("wrote %s", path)
        written.append(path)
    return written


__all__ = ["build_complex", "build_simple", "main", "render_templates"]

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    main()
