#!/usr/bin/env bash
# Fail if the linked ELF given as $1 has an allocator in it (issue 20: the firmware example
# runs with no allocator). Rust's allocator shims are `__rust_alloc` & co., the default
# implementation `__rdl_alloc` & co., a #[global_allocator]'s `__rg_alloc` & co.; any of them
# means that `alloc` got linked. (A firmware that used `alloc` without a #[global_allocator]
# would not link at all: "no global memory allocator found".) The ELF must also hold the
# firmware's entry point and wsloop's code, so that an empty or wrong file cannot pass.
set -euo pipefail
elf=$1
symbols=$(nm "$elf")
grep -q ' T _start$' <<<"$symbols" || { echo "$elf: no _start: not the firmware"; exit 1; }
grep -q 'wsloop' <<<"$symbols" || { echo "$elf: no wsloop code in it"; exit 1; }
if found=$(grep -E '__(rust|rdl|rg)_(alloc|dealloc|realloc|alloc_zeroed)|__rust_alloc_error_handler|__rust_no_alloc_shim' <<<"$symbols"); then
    echo "$elf links an allocator:"
    echo "$found"
    exit 1
fi
echo "$elf: no allocator linked; $(size "$elf" | tail -1 | awk '{print $1}') bytes of text (size, Berkeley)"
