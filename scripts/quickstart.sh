#!/usr/bin/env bash
# Quick start: install everything, bring the stack up, soak it briefly, show its status.
# Leaves the stack running; `pnpm hybrid down` takes it down and leaves nothing behind.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
pnpm -s hybrid doctor
pnpm -s hybrid up
pnpm -s hybrid soak --duration "${SOAK_DURATION:-2m}" --interval 10s
pnpm -s hybrid status
echo
echo "The stack is up. Try: pnpm hybrid exec -- stat -f -c %T /    Take it down: pnpm hybrid down"
