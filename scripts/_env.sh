# Sourced by demo.sh and test.sh: creates .venv with l4mon installed (editable) if needed, every
# package at the version constraints.txt pins (why: the header of that file).
# Re-running is cheap: pip only reinstalls when pyproject.toml or constraints.txt changed since
# the last install, so later runs need no network.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "l4mon needs Python >= 3.11 (found: $("$PYTHON" --version 2>&1 || echo none))." >&2
  echo "Set PYTHON=/path/to/python3.11 and run again." >&2
  exit 2
fi
# A .venv without pip is one whose creation was interrupted (Ctrl-C during the first run):
# made again rather than failing on every run after.
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -m pip --version >/dev/null 2>&1; then
  echo "== creating .venv"
  rm -rf .venv
  "$PYTHON" -m venv .venv
fi
extras=${L4MON_EXTRAS:-}
stamp=".venv/.installed${extras:+-$extras}"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ constraints.txt -nt "$stamp" ]; then
  echo "== installing l4mon${extras:+[$extras]} into .venv (versions from constraints.txt)"
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -c constraints.txt -e ".${extras:+[$extras]}"
  touch "$stamp"
fi
export PATH="$PWD/.venv/bin:$PATH"
