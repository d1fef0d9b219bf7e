#!/usr/bin/env bash
# Install what aiops-agent needs on Debian/Ubuntu: missing system packages, a .venv, the package itself.
#   scripts/setup.sh          runtime (prometheus for the demo)
#   scripts/setup.sh --dev    also test dependencies (postgresql server, alertmanager, journal tools,
#                             chromium for the UI test, pytest, ruff, playwright, ...)
set -euo pipefail
cd "$(dirname "$0")/.."
export LC_ALL=C.UTF-8 LANG=C.UTF-8

dev=0
[ "${1:-}" = "--dev" ] && dev=1

python=${PYTHON:-python3}
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "aiops-agent needs Python >= 3.11 (found: $("$python" --version 2>&1 || echo none))" >&2
    exit 1
fi

packages=()
have() { command -v "$1" >/dev/null 2>&1; }
have prometheus || [ -x /usr/bin/prometheus ] || packages+=(prometheus)
"$python" -c 'import venv, ensurepip' 2>/dev/null || packages+=(python3-venv)
if [ "$dev" = 1 ]; then
    ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || packages+=(postgresql)
    [ -x /usr/bin/prometheus-alertmanager ] || packages+=(prometheus-alertmanager)
    [ -x /lib/systemd/systemd-journal-remote ] || packages+=(systemd-journal-remote)
    [ -x /usr/bin/chromium ] || packages+=(chromium)
fi
if [ "${#packages[@]}" -gt 0 ]; then
    echo "==> installing Debian packages: ${packages[*]}"
    sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
    echo "==> creating .venv"
    "$python" -m venv .venv
fi
extras=""
[ "$dev" = 1 ] && extras="[dev]"
echo "==> installing aiops-agent${extras} into .venv"
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".${extras}"
