"""``python -m l4mon``: the command line, as the ``l4mon`` script runs it."""
from l4mon.faces.cli import main

raise SystemExit(main())
