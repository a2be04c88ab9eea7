#!/usr/bin/env python3
"""An independent safetensors reader in plain numpy: the io tests compare the C++ reader and writer
with it (this machine has no `safetensors` package; the rules below are those of its reference
reader, the Rust crate's Metadata::validate).

Usage: safetensors_numpy.py FILE...
Prints one JSON object, {FILE: view, ...}, where each view is
  {"header_length": N, "metadata": {...},
   "tensors": [{"name", "dtype", "shape", "offsets": [begin, end], "first": [up to 4 values], "checksum": int}]}
where checksum = sum(byte[i] * (i % 251 + 1)) over the tensor's bytes, modulo 2**64.
Exits 1 with a message when a file breaks a rule of the format.
"""
import json
import struct
import sys

import numpy as np

MAX_HEADER = 100_000_000
BITS = {"BOOL": 8, "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8,
        "F8_E8M0": 8, "I16": 16, "U16": 16, "F16": 16, "BF16": 16, "I32": 32, "U32": 32, "F32": 32,
        "C64": 64, "F64": 64, "I64": 64, "U64": 64}
NUMPY = {"BOOL": "?", "U8": "u1", "I8": "i1", "I16": "<i2", "U16": "<u2", "F16": "<f2", "I32": "<i4",
         "U32": "<u4", "F32": "<f4", "F64": "<f8", "I64": "<i8", "U64": "<u8"}


def bad(path, message):
    print(f"{path}: {message}", file=sys.stderr)
    sys.exit(1)


def values(dtype, raw):
    if dtype == "BF16":
        return (np.frombuffer(raw, "<u2").astype(np.uint32) << 16).view(np.float32)
    if dtype in NUMPY:
        return np.frombuffer(raw, NUMPY[dtype])
    return np.frombuffer(raw, np.uint8)


def checksum(raw):
    b = np.frombuffer(raw, np.uint8).astype(np.uint64)
    weights = np.arange(len(b), dtype=np.uint64) % np.uint64(251) + np.uint64(1)
    return int((b * weights).sum(dtype=np.uint64))


def read(path):
    blob = open(path, "rb").read()
    if len(blob) < 8:
        bad(path, "shorter than the header length")
    (n,) = struct.unpack("<Q", blob[:8])
    if n > MAX_HEADER or 8 + n > len(blob):
        bad(path, f"bad header length {n}")
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    if not isinstance(header, dict):
        bad(path, "header is not an object")
    metadata = header.pop("__metadata__", None) or {}
    if not all(isinstance(v, str) for v in metadata.values()):
        bad(path, "metadata values must be strings")
    data = blob[8 + n:]
    entries = sorted(header.items(), key=lambda kv: tuple(kv[1]["data_offsets"]))
    cursor = 0
    out = []
    for name, info in entries:
        begin, end = info["data_offsets"]
        numel = int(np.prod(info["shape"], dtype=object)) if info["shape"] else 1
        if begin != cursor or end < begin or (end - begin) * 8 != numel * BITS[info["dtype"]]:
            bad(path, f"tensor {name}: offsets {begin, end} break the layout")
        cursor = end
        raw = data[begin:end]
        first = values(info["dtype"], raw)[:4].tolist()
        out.append({"name": name, "dtype": info["dtype"], "shape": info["shape"], "offsets": [begin, end],
                    "first": first, "checksum": checksum(raw)})
    if cursor != len(data):
        bad(path, f"tensors cover {cursor} of {len(data)} data bytes")
    return {"header_length": n, "metadata": metadata, "tensors": out}


if __name__ == "__main__":
    json.dump({path: read(path) for path in sys.argv[1:]}, sys.stdout)
