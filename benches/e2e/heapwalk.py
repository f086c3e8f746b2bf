# The soak's heap walk (benches/e2e/src/bin/soak.rs runs it): inside `gdb -p PID -batch -x
# heapwalk.py`, list the chunks glibc's malloc has handed out to the program and not got
# back, by size, and print them as one line `HEAPWALK {json}` on gdb's stdout.
#
# `malloc_stats()` counts as "in use" every chunk not in the arena's bins, including those
# freed into the per-thread cache (tcache, up to 7 per size class up to 1032 bytes) and the
# fastbins: its figure creeps up as those caches fill, although the program holds nothing
# more. Here those are taken out: a chunk is allocated when the next chunk's PREV_INUSE bit
# is set and it is in neither cache. Only the main arena is walked (the one-loop server under
# test allocates on its main thread only), plus the mmapped chunks (counted by glibc).
#
# Needs glibc's debugging symbols (main_arena, mp_, tcache), and glibc >= 2.32 (safe-linking
# of the cache lists).
import json
import struct

import gdb

inferior = gdb.selected_inferior()


def u64(address):
    return struct.unpack("<Q", bytes(inferior.read_memory(address, 8)))[0]


def value(expression):
    return int(gdb.parse_and_eval(expression))


base = value("(unsigned long)mp_.sbrk_base")
top = value("(unsigned long)main_arena.top")
cached = set()
# tcache_perthread_struct: uint16_t counts[64]; tcache_entry *entries[64]. An entry is the
# chunk's memory (chunk + 16); its `next` is stored as (address of the field >> 12) ^ next.
tcache = value("(unsigned long)tcache")
for i in range(64):
    entry = u64(tcache + 128 + 8 * i) if tcache else 0
    for _ in range(100000):
        if not entry:
            break
        cached.add(entry - 16)
        entry = (entry >> 12) ^ u64(entry)
# Fastbins hold chunks; their fd (at chunk + 16) is protected the same way.
for i in range(10):
    chunk = value("(unsigned long)main_arena.fastbinsY[%d]" % i)
    for _ in range(100000):
        if not chunk:
            break
        cached.add(chunk)
        chunk = ((chunk + 16) >> 12) ^ u64(chunk + 16)
sizes = {}
chunk = base
while chunk < top:
    size = u64(chunk + 8) & ~7
    if size == 0:
        break
    if u64(chunk + size + 8) & 1 and chunk not in cached:
        sizes[size] = sizes.get(size, 0) + 1
    chunk += size
print(
    "HEAPWALK "
    + json.dumps(
        {
            "sizes": sizes,
            "mmapped_bytes": value("mp_.mmapped_mem"),
            "mmapped_chunks": value("mp_.n_mmaps"),
        }
    )
)
