#!/usr/bin/env python3
"""Writes the binary fixtures of tests/data/formats (std-lib only, independent of eplb-gen).

safetensors files follow the huggingface/safetensors README: u64 LE header length, JSON header
padded with spaces to a multiple of 8, then little-endian row-major data.

The TensorRT-LLM directory holds the vLLM example of shared/formats/vllm-offline-eplb.md section 5
as two iterations of logical counts, split over two ranks; MoE layers are decoder layers 3 and 4:
  iteration 0 (vLLM step 2250): layer 3 = [70, 10, 25], layer 4 = [10, 60, 20]
  iteration 1 (vLLM step 2260): layer 3 = [68, 12, 20], layer 4 = [15, 50, 30]
Sum = [[138, 22, 45], [25, 110, 50]], the aggregated logical load the spec gives.
"""
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
FMT = {"I64": "<q", "I32": "<i", "F32": "<f"}
SIZE = {"I64": 8, "I32": 4, "F32": 4}


def safetensors(tensors):
    """tensors: list of (name, dtype, values) of 1-D tensors, written in this order."""
    header, data = {}, b""
    for name, dtype, values in tensors:
        begin = len(data)
        for v in values:
            data += struct.pack(FMT[dtype], v)
        header[name] = {"dtype": dtype, "shape": [len(values)], "data_offsets": [begin, len(data)]}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    return struct.pack("<Q", len(text)) + text + data


def write(path, content):
    with open(path, "wb") as f:
        f.write(content)


# The spec's example: key "0_3" = int64 [7, 0, 2, 5], 104 bytes.
example = safetensors([("0_3", "I64", [7, 0, 2, 5])])
assert len(example) == 104
write(os.path.join(HERE, "safetensors_0_3.safetensors"), example)

d = os.path.join(HERE, "trtllm")
os.makedirs(d, exist_ok=True)
write(os.path.join(d, "meta_info.json"),
      json.dumps({"num_experts": 3, "num_experts_per_token": 2}).encode())
# rank 0 (int64) + rank 1 (int32) = the logical counts above.
write(os.path.join(d, "rank0.safetensors"), safetensors([
    ("0_3", "I64", [30, 10, 5]), ("0_4", "I64", [10, 0, 20]),
    ("1_3", "I64", [60, 2, 0]), ("1_4", "I64", [5, 25, 30])]))
write(os.path.join(d, "rank1.safetensors"), safetensors([
    ("1_4", "I32", [10, 25, 0]), ("1_3", "I32", [8, 10, 20]),
    ("0_4", "I32", [0, 60, 0]), ("0_3", "I32", [40, 0, 20])]))
# Files the loader must skip: keys that are not {iter}_{layer}, other shapes.
write(os.path.join(d, "rank0_raw.safetensors"), safetensors([("raw_ids", "I32", [1, 2, 3, 4, 5])]))
write(os.path.join(d, "cooccurrence_rank0.safetensors"),
      safetensors([("0_3", "F32", [0.5, 1.5, 2.5, 0.25])]))
