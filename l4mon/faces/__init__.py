"""The faces of l4mon, its top floor: the HTTP API (``api``), reports (``report``) and the
command line (``cli``, run as ``l4mon`` or ``python -m l4mon``). They use every floor below
(the hub in l4mon, the scenarios and replay) and nothing below imports them."""
