#!/usr/bin/env bash
# Prepares a Debian 12 + Node 20 machine to build, run and test vpl011. Idempotent: each step runs only when
# its result is missing or stale, so a second run changes nothing and takes a second or two.
#   1. Debian packages (apt-get, as root), installed only when missing, after one apt-get update: with --runtime
#      only what booting a guest needs (normally already on Debian), otherwise also the test and benchmark tools;
#   2. node_modules (npm ci) when missing or older than package-lock.json;
#   3. the build (tsc -p .) when a source is newer than the last build, and the native fast path (C, optional);
#   4. libunicorn 2.1.x and the default guest (kernel Image, busybox initramfs) into the cache
#      ($VPL011_CACHE, default ~/.cache/vpl011), with private apt state: the host's apt setup is not changed.
# Steps 2-4 need no root. `./vpl011` runs it with --runtime, `npm test` and CI without.
# Usage: scripts/setup.sh [--quiet] [--runtime]   (--quiet: print only errors)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

quiet=0
runtime_only=0
for arg in "$@"; do
  case "$arg" in
    -q|--quiet) quiet=1 ;;
    --runtime) runtime_only=1 ;;
    -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "setup: unknown option $arg (try --help)" >&2; exit 2 ;;
  esac
done

say() { if [ "$quiet" = 0 ]; then echo "setup: $*" >&2; fi; }
die() { echo "setup: $*" >&2; exit 1; }

# Runs a command; with --quiet its output is kept and shown only if it fails.
run() {
  if [ "$quiet" = 0 ]; then
    "$@"
    return
  fi
  local log rc=0
  log="$(mktemp)"
  "$@" >"$log" 2>&1 || rc=$?
  if [ "$rc" != 0 ]; then cat "$log" >&2; fi
  rm -f "$log"
  return "$rc"
}

# --- 1. Debian packages --------------------------------------------------------------------------------------------
# Booting: debian-archive-keyring verifies what the fetch step downloads (apt-get and dpkg-deb come with Debian).
# Tests and benchmarks: device-tree-compiler: FDT tests; gcc/binutils-aarch64-linux-gnu: bare-metal guests and ELF
# tests; cpio: initramfs tests; expect, tmux, socat: console tests; qemu-system-arm: benchmarks (side-by-side
# figures) and the U-Boot test's reference run; u-boot-qemu: the U-Boot test (qemu-virt layout, docs/LAYOUTS.md);
# chromium: web console tests.
packages=(debian-archive-keyring)
if [ "$runtime_only" = 0 ]; then
  packages+=(device-tree-compiler gcc-aarch64-linux-gnu binutils-aarch64-linux-gnu cpio ca-certificates expect tmux
    socat qemu-system-arm u-boot-qemu chromium)
fi

command -v dpkg-query >/dev/null 2>&1 || die "this is not a Debian system (no dpkg-query); vpl011's setup needs Debian 12"
missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed'; then missing+=("$p"); fi
done
if [ "${#missing[@]}" -gt 0 ]; then
  command -v apt-get >/dev/null 2>&1 || die "missing Debian packages (${missing[*]}) and no apt-get to install them"
  if [ "$(id -u)" != 0 ]; then
    die "missing Debian packages: ${missing[*]}
  run this script as root, or install them first: sudo apt-get install ${missing[*]}"
  fi
  say "installing ${missing[*]}"
  run apt-get update -q || die "apt-get update failed: no network, or the Debian mirror in /etc/apt is unreachable"
  run env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" \
    || die "apt-get install ${missing[*]} failed (see above)"
else
  say "Debian packages present"
fi

# --- 2. Node and node_modules --------------------------------------------------------------------------------------
command -v node >/dev/null 2>&1 || die "node is not installed: vpl011 needs Node 20 (e.g. from deb.nodesource.com)"
node_major="$(node -p 'process.versions.node.split(".")[0]')"
[ "$node_major" -ge 20 ] || die "node $(node --version) is too old: vpl011 needs Node 20 or newer"
command -v npm >/dev/null 2>&1 || die "npm is not installed (it comes with Node 20)"
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing node_modules (npm ci)"
  run npm ci --no-audit --no-fund || die "npm ci failed: no network, or the npm registry is unreachable"
else
  say "node_modules up to date"
fi

# --- 3. Build ------------------------------------------------------------------------------------------------------
# A build with type errors emits nothing (noEmitOnError) and stops here: a tree that does not type-check never runs.
stamp=dist/.build-stamp
if [ ! -f "$stamp" ] || [ -n "$(find src test bench tsconfig.json package-lock.json -newer "$stamp" \( -name '*.ts' -o -name '*.json' \) -print -quit 2>/dev/null)" ]; then
  say "building (tsc -p .)"
  rm -f "$stamp"
  run npx tsc -p . || die "the TypeScript build reported errors (above); nothing was built"
  touch "$stamp"
else
  say "build up to date"
fi
[ -f dist/src/toolstack/fetch.js ] || die "the build produced no dist/src/toolstack/fetch.js"
# The vCPU's native console fast path (optional: without a C compiler this prints a hint and vpl011 runs in TypeScript).
if [ "$quiet" = 1 ]; then bash scripts/build-native.sh --quiet; else bash scripts/build-native.sh; fi

# --- 4. Unicorn library and guest images --------------------------------------------------------------------------
# Downloads always show their progress (a first run fetches ~60 MB); --quiet only hides "already present" lines.
fetch_args=()
if [ "$quiet" = 1 ]; then fetch_args+=(--terse); fi
node scripts/fetch.mjs "${fetch_args[@]}" || die "fetching the unicorn library or the guest images failed (see above)"
say "ready: ./vpl011 run boots the default guest; npm test runs the tests"
