#!/usr/bin/env bash
# Install everything (including PostgreSQL and Prometheus for the integration suites), lint, and run
# the whole test suite. Strict mode: a missing dependency fails a test instead of skipping it.
set -euo pipefail
cd "$(dirname "$0")/.."
export LC_ALL=C.UTF-8 LANG=C.UTF-8 AIOPS_STRICT_TESTS=1
scripts/setup.sh --dev
echo "==> ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "==> mypy"
.venv/bin/mypy
echo "==> pytest"
exec .venv/bin/pytest "$@"
