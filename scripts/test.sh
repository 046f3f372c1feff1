#!/usr/bin/env bash
# Set up (first run only) and run the whole test suite against a real Mosquitto broker.
# Extra arguments go to pytest (e.g. -k quarantine).
L4MON_EXTRAS=test
source "$(dirname "$0")/_env.sh"

# Debian packages the suite needs but pip cannot give: the broker, its command-line clients,
# the browser the console test drives, promtool, and PostgreSQL for the journal tests (the
# tests run initdb and pg_ctl themselves in a temp dir; no system service is used), and openssl
# for the TLS tests' certificates. Under CI a part still missing fails its tests (tests/parts.py).
need=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
command -v mosquitto_pub >/dev/null 2>&1 || need+=(mosquitto-clients)
[ -x /usr/bin/chromium ] || need+=(chromium)  # the console's browser test
# promtool checks deploy/prometheus/l4mon-rules.yml; Debian ships it only inside prometheus.
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
# Debian keeps initdb and pg_ctl in /usr/lib/postgresql/VERSION/bin, off PATH.
command -v initdb >/dev/null 2>&1 || compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null \
  || need+=(postgresql)
if [ ${#need[@]} -gt 0 ]; then
  echo "== installing Debian packages: ${need[*]}"
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
# The packages start a system-wide broker on port 1883 and a PostgreSQL on 5432 where a service
# manager runs; the tests start their own on free ports.

echo "== ruff"
ruff check .
echo "== pytest"
exec python -m pytest "$@"
