"""How a child process runs the command line of a given tree: ``python -m faces`` for a tree
whose faces have their own package, ``python -m faces`` for an older one (a benchmark's
baseline), so a bench can time any revision against this one."""

from __future__ import annotations

import sys
from pathlib import Path


def cli(tree: Path) -> list[str]:
    """The start of a command that runs ``tree``'s CLI with this interpreter."""
    package = "faces" if (tree / "faces" / "__main__.py").exists() else "l4mon"
    return [sys.executable, "-m", package]
