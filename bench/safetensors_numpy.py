"""Reads and writes .safetensors files with numpy alone (the benchmark machines have no safetensors
package). Format: an 8-byte little-endian header length, a JSON header mapping each tensor name to
{dtype, shape, data_offsets} (offsets relative to the end of the header), then the raw little-endian
data. Like the safetensors library, tensors are laid out in name order and the header is padded with
spaces so the data starts 8-byte aligned.

bf16 has no numpy dtype: it is carried as uint16 holding the raw bits (see f32_to_bf16_bits)."""
import json
import struct

import numpy as np

NUMPY_DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "BF16": np.uint16,
                "I64": np.int64, "I32": np.int32, "I16": np.int16, "I8": np.int8, "U8": np.uint8,
                "BOOL": np.bool_}


def f32_to_bf16_bits(a):
    """Rounds float32 to bfloat16 (round to nearest even, as torch's .to(torch.bfloat16) does); returns
    the raw bits as uint16. NaN is not handled: random normal weights never hold one."""
    u = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)
    return ((u + (((u >> 16) & 1) + 0x7FFF)) >> 16).astype(np.uint16)


def bf16_bits_to_f32(bits):
    return (bits.astype(np.uint32) << 16).view(np.float32)


def read_header(path):
    """Returns ({name: {dtype, shape, data_offsets}}, offset of the data section)."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
    header.pop("__metadata__", None)
    return header, 8 + n


def read(path):
    """Returns {name: (dtype string, numpy array)}: writable views into one buffer holding the whole
    file (read in one go: faster than a memory map that is then copied tensor by tensor)."""
    header, start = read_header(path)
    data = np.fromfile(path, dtype=np.uint8)
    out = {}
    for name, h in header.items():
        lo, hi = h["data_offsets"]
        out[name] = (h["dtype"], data[start + lo:start + hi].view(NUMPY_DTYPES[h["dtype"]]).reshape(h["shape"]))
    return out


def write(path, specs, produce):
    """Writes a file holding the tensors specs = {name: (dtype string, shape)}. produce(name) returns
    that tensor's data as a numpy array (called once per tensor, in name order, so a large file can
    be written one tensor at a time)."""
    names = sorted(specs)
    header, offset = {"__metadata__": {"format": "pt"}}, 0
    for name in names:
        dtype, shape = specs[name]
        nbytes = int(np.prod(shape, dtype=np.int64)) * np.dtype(NUMPY_DTYPES[dtype]).itemsize
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-(8 + len(blob)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(blob)))
        f.write(blob)
        for name in names:
            a = np.ascontiguousarray(produce(name))
            lo, hi = header[name]["data_offsets"]
            if a.dtype != NUMPY_DTYPES[specs[name][0]] or a.nbytes != hi - lo:
                raise ValueError(f"{name}: produced {a.dtype} {a.shape}, header says {specs[name]}")
            a.tofile(f)
