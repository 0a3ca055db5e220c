#!/usr/bin/env python3
"""Plain-Python reference reader for the ingest benchmark (bench/ingest.sh).

Reads a vLLM offline-EPLB stats JSONL file the way vLLM's tools/eplb/generate_static_mapping.py
does -- json.loads per line, then logical[l][p2l_map[l][p]] += expert_load[l][p] with
num_logical = max(p2l_map) + 1 -- with Python lists instead of torch, so it runs anywhere.
Prints the figures line of `eplb-bench-ingest run`:
    text_bytes seconds cpu_seconds records checksum device
"""
import gzip
import json
import sys
import time


def open_text(path):
    with open(path, "rb") as f:
        magic = f.read(2)
    return gzip.open(path, "rb") if magic == b"\x1f\x8b" else open(path, "rb")


def main():
    if len(sys.argv) != 2:
        print("usage: reference_reader.py STATS.jsonl[.gz]", file=sys.stderr)
        return 2
    t0, c0 = time.perf_counter(), time.process_time()
    logical = None
    records = 0
    nbytes = 0
    with open_text(sys.argv[1]) as f:
        for number, raw in enumerate(f, 1):
            nbytes += len(raw)
            line = raw.strip()
            if not line:
                continue
            rec = json.loads(line)
            if rec.get("record_type") != "eplb_load_stats":
                continue
            load, p2l = rec["expert_load"], rec["p2l_map"]
            if len(load) != len(p2l) or any(len(a) != len(b) for a, b in zip(load, p2l)):
                raise ValueError(f"{sys.argv[1]}:{number}: expert_load shape does not match p2l_map")
            num_logical = max(max(row) for row in p2l) + 1
            if logical is None:
                logical = [[0] * num_logical for _ in load]
            elif len(logical) != len(load) or len(logical[0]) != num_logical:
                raise ValueError(f"{sys.argv[1]}:{number}: inconsistent logical load shape")
            for acc, loads, ids in zip(logical, load, p2l):
                for v, e in zip(loads, ids):
                    acc[e] += v
            records += 1
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    experts = len(logical[0])
    checksum = sum((l * experts + e + 1) * s
                   for l, row in enumerate(logical) for e, s in enumerate(row)) % 2**64
    print(nbytes, f"{seconds:.4f}", f"{cpu:.4f}", records, checksum, "python")
    return 0


if __name__ == "__main__":
    sys.exit(main())
