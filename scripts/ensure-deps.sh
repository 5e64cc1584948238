#!/usr/bin/env bash
# Installs what `npm start` and `npm test` need on a fresh clone (Debian/Ubuntu, root or sudo):
# the OS packages (nats-server, SoftHSM2, OpenSC, GnuTLS, jwcrypto, openssl) and the npm
# dependencies from the lockfile. Idempotent and quiet when everything is present.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v nats-server   >/dev/null || need+=(nats-server)
command -v softhsm2-util >/dev/null || need+=(softhsm2)
command -v pkcs11-tool   >/dev/null || need+=(opensc)
command -v gnutls-cli    >/dev/null || need+=(gnutls-bin)
command -v openssl       >/dev/null || need+=(openssl)
/usr/bin/python3 -c 'import jwcrypto' 2>/dev/null || need+=(python3-jwcrypto)

if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  if command -v apt-get >/dev/null && { [ -z "$sudo" ] || command -v sudo >/dev/null; }; then
    echo "ensure-deps: installing OS packages: ${need[*]}" >&2
    $sudo apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "ensure-deps: missing ${need[*]}. Install them with your OS package manager" >&2
    echo "  (Debian/Ubuntu: apt-get install ${need[*]}), then run this again." >&2
    exit 1
  fi
fi

# npm dependencies: install from the lockfile when node_modules is missing or older than it.
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "ensure-deps: installing npm dependencies (npm ci)" >&2
  npm ci --no-audit --no-fund --loglevel=error >&2
fi
