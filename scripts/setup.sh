#!/usr/bin/env bash
# Installs what a fresh Debian 12 machine lacks to build, run and test hybrid, as root:
# Debian packages (gVisor's runsc, containerd, runc, FUSE, libseccomp, libmnl, reference CNI plugins,
# the peers the tests and benchmarks compare with), pnpm, the workspace's dependencies, and the
# build (TypeScript and the C tracer). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  runsc containerd runc
  libfuse2 libfuse-dev fuse3
  libseccomp-dev libmnl-dev pkg-config gcc make libc6-dev
  containernetworking-plugins iproute2 iptables
  busybox-static proot strace lxcfs valgrind hyperfine
  docker.io openssl procps util-linux kmod
)

if [ "$(id -u)" != 0 ]; then
  echo "setup.sh: run as root (apt-get, mounts, ptrace and runsc need it)" >&2
  exit 1
fi

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup.sh: installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Debian's lxcfs and docker.io may start their services on install; the project starts its own.
pkill -x lxcfs 2>/dev/null || true

PNPM_VERSION=$(node -p 'require("./package.json").packageManager.split("@")[1]')
if ! command -v pnpm >/dev/null || [ "$(pnpm --version)" != "$PNPM_VERSION" ]; then
  echo "setup.sh: installing pnpm $PNPM_VERSION"
  npm install -g "pnpm@$PNPM_VERSION" >/dev/null
fi

export TURBO_TELEMETRY_DISABLED=1
pnpm install --frozen-lockfile
pnpm build
