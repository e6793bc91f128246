#!/usr/bin/env bash
# Installs what the e2e suite and the shim's tests need, only if missing.
# Idempotent and quiet: `apt-get update` runs only when something must be installed.
set -euo pipefail

# command -> Debian package that provides it
declare -A want=(
  [redis-server]=redis-server
  [redis-cli]=redis-tools
  [valgrind]=valgrind
  [curl]=curl
  [gcc]=gcc
  [make]=make
  [python3]=python3
  # The DNS server of the edge-mode tests (tests/edge): dnsmasq-base is the binary
  # alone, without the system service that would take port 53.
  [dnsmasq]=dnsmasq-base
)

missing=()
for cmd in "${!want[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${want[$cmd]}")
done

# Python modules, from PyPI with pip: grpcio for e2e/grpc_e2e.py (gRPC through the proxy).
# Installed for the python3 on PATH, the one the suite runs.
install_python_modules() {
  command -v python3 >/dev/null 2>&1 || return 0
  python3 -c 'import grpc' 2>/dev/null && return 0
  echo "deps.sh: installing python module grpcio" >&2
  export PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1
  python3 -m pip install --quiet grpcio ||
    python3 -m pip install --quiet --break-system-packages grpcio
}

if [ ${#missing[@]} -eq 0 ]; then
  install_python_modules
  exit $?
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "deps.sh: missing ${missing[*]} and not root; install them with apt-get" >&2
  exit 1
fi
echo "deps.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
install_python_modules
