"""How a child process runs the command line of a given tree: ``python -m l4mon``, which
every revision since the first has, so a bench can time any revision against this one."""

from __future__ import annotations

import sys
from pathlib import Path


def cli(tree: Path) -> list[str]:
    """The start of a command that runs ``tree``'s CLI with this interpreter."""
    del tree  # every tree enters the same way; the caller's PYTHONPATH picks the tree
    return [sys.executable, "-m", "l4mon"]
