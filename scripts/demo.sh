#!/usr/bin/env bash
# Install everything, then run the demo: a faultable service, a real Prometheus and the agent on
# 127.0.0.1; a fault is injected, detected, remediated by an Ansible runbook and verified.
set -euo pipefail
cd "$(dirname "$0")/.."
export LC_ALL=C.UTF-8 LANG=C.UTF-8
scripts/setup.sh
exec .venv/bin/python -m demo.run "$@"
