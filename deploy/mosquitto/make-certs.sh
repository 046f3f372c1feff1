#!/usr/bin/env bash
# A CA, the broker's certificate and one client certificate per name, with openssl (EC P-256).
#   make-certs.sh DIR BROKER_HOST CLIENT_NAME...
# e.g. make-certs.sh /etc/mosquitto/l4mon mqtt.depot.example l4mon-hub-a shuttle-01 rsu-araya
# Re-running keeps an existing CA (ca.key) and issues the named certificates anew.
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: $0 DIR BROKER_HOST [CLIENT_NAME...]" >&2
  exit 2
fi
dir=$1 host=$2
shift 2
mkdir -p "$dir"
cd "$dir"
umask 077
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

if [ ! -f ca.key ]; then
  key ca.key
  openssl req -x509 -new -key ca.key -out ca.crt -days 3650 -subj "/CN=l4mon CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
fi

# issue FILE_STEM CN EXTENSIONS
issue() {
  key "$1.key"
  openssl req -new -key "$1.key" -out "$1.csr" -subj "/CN=$2"
  printf '%b\n' "$3" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -out "$1.crt" \
    -days 825 -extfile "$1.ext" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}

if [[ $host =~ ^[0-9.]+$ || $host == *:* ]]; then san="IP:$host"; else san="DNS:$host"; fi
issue broker "$host" "subjectAltName=$san\nextendedKeyUsage=serverAuth"
for name in "$@"; do
  issue "$name" "$name" "extendedKeyUsage=clientAuth"
done
chmod 644 ./*.crt
echo "certificates in $dir: ca.crt broker.crt/.key${*:+ $*}" >&2
