#!/usr/bin/env bash
# Set up (first run only) and start the demo: hub + simulated fleet, no broker needed.
# Extra arguments go to `l4mon demo` (e.g. --http 127.0.0.1:9000 --vehicles 8).
source "$(dirname "$0")/_env.sh"
exec l4mon demo "$@"
