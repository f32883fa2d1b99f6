#!/usr/bin/env bash
# Builds the vCPU's native fast path (src/cpu/native/fastpath.c) with the system C compiler into
# dist/native/libvpl011_fastpath.so (never committed). Idempotent: rebuilds only when the source changed (compared
# with the copy kept next to the library, so an edit within the same second as the last build is not missed).
# Without a compiler it prints a one-line hint and succeeds: vpl011 then runs its pure-TypeScript path.
# Usage: scripts/build-native.sh [--quiet]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
src="$root/src/cpu/native/fastpath.c"
out="$root/dist/native/libvpl011_fastpath.so"
quiet=0
[ "${1:-}" = "--quiet" ] && quiet=1
stamp="$out.src"
if [ -f "$out" ] && [ -f "$stamp" ] && cmp -s "$src" "$stamp"; then
  [ "$quiet" = 1 ] || echo "setup: native fast path up to date" >&2
  exit 0
fi
cc="${CC:-}"
if [ -z "$cc" ]; then
  for c in gcc cc clang; do
    if command -v "$c" >/dev/null 2>&1; then cc="$c"; break; fi
  done
fi
if [ -z "$cc" ]; then
  echo "setup: no C compiler (gcc/cc/clang): the native console fast path is not built; vpl011 uses its TypeScript path (install gcc and rerun scripts/setup.sh for ~3x console throughput)" >&2
  exit 0
fi
mkdir -p "$(dirname "$out")"
tmp="$out.tmp.$$"
if "$cc" -O2 -fPIC -shared -std=c11 -Wall -Wextra -Werror -o "$tmp" "$src"; then
  mv -f "$tmp" "$out"
  cp "$src" "$stamp"
  [ "$quiet" = 1 ] || echo "setup: built the native fast path ($cc): $out" >&2
else
  rm -f "$tmp"
  echo "setup: the native fast path did not compile with $cc (see above); vpl011 uses its TypeScript path" >&2
fi
