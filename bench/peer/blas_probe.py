#!/usr/bin/python3
"""Says which BLAS this torch runs on, with which OpenBLAS kernel and threads, and whether its GEMMs are
right here: run under a candidate environment (OPENBLAS_CORETYPE, ATEN_CPU_CAPABILITY, ...) before
the peer is timed under it. Checks F.linear, as the peer calls it, on the peer's shapes against float64
(f32 must agree to 1e-5 relative, bf16 to 1e-2), and times a 2048x512x2048 f32 and bf16 GEMM.
Prints one JSON object. Usage: blas_probe.py [--threads 2]"""
import argparse
import ctypes
import json
import statistics
import time

import torch

# (tokens, in, out) of the peer's F.linear calls: decode, a few routed tokens, prefill, the LM head.
SHAPES = [(1, 512, 1024), (1, 512, 32000), (7, 1024, 512), (256, 512, 2048), (2048, 512, 512), (8, 512, 32000)]
TOLERANCE = {torch.float32: 1e-5, torch.bfloat16: 1e-2}


def openblas_info():
    try:
        lib = ctypes.CDLL("libopenblas.so.0")  # the library torch's libblas.so.3 already loaded
    except OSError:
        return {"corename": None, "config": None}
    lib.openblas_get_corename.restype = ctypes.c_char_p
    lib.openblas_get_config.restype = ctypes.c_char_p
    return {"corename": lib.openblas_get_corename().decode(), "config": lib.openblas_get_config().decode(),
            "openblas_threads": lib.openblas_get_num_threads()}


def blas_libraries():
    with open("/proc/self/maps") as f:
        paths = {line.split()[-1] for line in f if "/" in line}
    return sorted(p for p in paths if any(s in p for s in ("blas", "lapack", "dnnl", "mkl")))


def max_rel_error(dtype):
    g = torch.Generator().manual_seed(0)
    worst = 0.0
    for m, k, n in SHAPES:
        x = torch.randn(m, k, generator=g).to(dtype)
        w = torch.randn(n, k, generator=g).to(dtype)
        got = torch.nn.functional.linear(x, w).double()
        want = x.double() @ w.double().t()
        worst = max(worst, ((got - want).abs().max() / want.abs().max()).item())
    return worst


def gemm_gflops(dtype, m=2048, k=512, n=2048, runs=9):
    a, b = torch.randn(m, k).to(dtype), torch.randn(k, n).to(dtype)
    a @ b
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t)
    return 2.0 * m * k * n / statistics.median(times) / 1e9


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    capability = [ln.split(":")[1].strip() for ln in torch.__config__.show().splitlines() if "CPU capability" in ln]
    result = dict(openblas_info(), libraries=blas_libraries(), torch=torch.__version__,
                  torch_threads=torch.get_num_threads(), cpu_capability=capability[0] if capability else None)
    for name, dtype in (("f32", torch.float32), ("bf16", torch.bfloat16)):
        err = max_rel_error(dtype)
        result[name] = {"max_rel_error": err, "correct": err <= TOLERANCE[dtype],
                        "gemm_2048x512x2048_gflops": gemm_gflops(dtype)}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
