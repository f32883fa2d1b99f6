#!/bin/sh
# Build the bare-metal guests into the cache: node dist/src/vmm/bare-guests.js does the same from TypeScript.
set -e
out="${VPL011_CACHE:-$HOME/.cache/vpl011}/bare"; mkdir -p "$out"; cd "$(dirname "$0")"
for g in hello tx-flood bad-access; do
  aarch64-linux-gnu-as -I . -o "$out/$g.o" "$g.S"
  aarch64-linux-gnu-ld -Ttext=0x40000000 -o "$out/$g.elf" "$out/$g.o"
  aarch64-linux-gnu-objcopy -O binary "$out/$g.elf" "$out/$g.bin"
done
