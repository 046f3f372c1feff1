"""Progress a person can see on a terminal for the long commands (import, replay, report).

A rich progress bar on standard error when it is a terminal; nothing at all otherwise, so a
pipe, a log file or CI gets only the commands' own output. The work reports how far it is;
how that is shown is decided here alone.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

#: Called with how much is done so far (in the unit of ``total``).
Update = Callable[[float], None]


def shown() -> bool:
    return sys.stderr.isatty()


@contextmanager
def bar(description: str, total: float | None) -> Iterator[Update]:
    """A bar from 0 to ``total`` (None: unknown, a spinner); yields ``update(done)``."""
    if not shown():
        yield lambda _done: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns: list[Any] = [TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
                          TimeElapsedColumn(), TimeRemainingColumn()]
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task(description, total=total)
        yield lambda done: progress.update(task, completed=done)
