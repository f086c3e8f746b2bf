#!/usr/bin/env bash
# Fail unless the firmware ELF $1 has less text than the ELF $2 (issue 20: wsloop's firmware
# example must be smaller than the same job done with embedded-websocket, built the same way).
# The measure is the README's: the `text` column of `size` (Berkeley format: code and
# read-only data) on the linked ELF. binutils' `size` where it is installed (it comes with
# the C toolchain that links Rust's host code), else llvm-size from rustup's llvm-tools.
set -euo pipefail
ours=$1
theirs=$2
if command -v size >/dev/null; then
    size_tool=size
else
    rustup component add llvm-tools >/dev/null
    size_tool=$(rustc --print sysroot)/lib/rustlib/$(rustc -vV | sed -n 's/^host: //p')/bin/llvm-size
fi
# The first column of the line after the header.
text() { "$size_tool" "$1" | awk 'NR == 2 { print $1 }'; }
a=$(text "$ours")
b=$(text "$theirs")
# Both must be numbers: a missing or broken ELF must not pass.
[[ $a =~ ^[0-9]+$ && $b =~ ^[0-9]+$ ]] || { echo "size_check: no text size for $ours or $theirs"; exit 1; }
if (( a < b )); then
    echo "size_check: $ours $a B of text < $theirs $b B ($(( (b - a) * 100 / b ))% smaller)"
else
    echo "size_check: $ours $a B of text is not smaller than $theirs $b B"
    exit 1
fi
