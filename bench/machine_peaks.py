#!/usr/bin/python3
"""Measures the ceilings the CPU benchmark's MFU and bandwidth use are relative to, with the libraries
this machine has (through Debian's torch, on THREADS threads):
  f32 GEMM:  the fastest of OpenBLAS sgemm (torch.matmul) and oneDNN's f32 inner product
             (torch's mkldnn_linear, the library our CPU backend uses), square 1024 and 2048;
  bf16 GEMM: oneDNN's bf16 matmul (torch.matmul on bf16 runs it), square 1024 and 2048;
  copy:      the fastest of torch's parallel copy_ and numpy's copyto of a 512 MiB buffer, counting
             bytes read + bytes written (STREAM's convention);
  read:      torch's parallel sum of a 512 MiB buffer, bytes read: what decode does with the weights
             (on the Zen 4 machine it is ~1.4x the copy figure, so decode set against copy passed 100%).
Each figure is the best of RUNS timed runs after one warm-up: contention on a shared machine only
slows runs down, so the best one is the closest to the machine's own ceiling.
Prints one JSON object. Usage: machine_peaks.py [--threads 2] [--runs 7]"""
import argparse
import json
import time

import numpy as np
import torch


def best_seconds(fn, runs):
    fn()
    best = float("inf")
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def gemm_peaks(runs):
    f32, bf16 = {}, {}
    for n in (1024, 2048):
        a, b = torch.randn(n, n), torch.randn(n, n)
        flops = 2.0 * n ** 3
        f32[f"openblas_sgemm_{n}"] = flops / best_seconds(lambda: a @ b, runs) / 1e9
        am, bm = a.to_mkldnn(), b.to_mkldnn()
        f32[f"onednn_f32_{n}"] = flops / best_seconds(lambda: torch._C._nn.mkldnn_linear(am, bm, None), runs) / 1e9
        ab, bb = a.bfloat16(), b.bfloat16()
        bf16[f"onednn_bf16_{n}"] = flops / best_seconds(lambda: ab @ bb, runs) / 1e9
    return f32, bf16


def copy_bandwidth(runs, nbytes=512 << 20):
    src = torch.rand(nbytes // 4)
    dst = torch.empty_like(src)
    ways = {"torch_copy": lambda: dst.copy_(src),
            "numpy_copyto": lambda: np.copyto(dst.numpy(), src.numpy())}
    return {k: 2.0 * nbytes / best_seconds(f, runs) / 1e9 for k, f in ways.items()}


def read_bandwidth(runs, nbytes=512 << 20):
    src = torch.rand(nbytes // 4)
    return {"torch_sum": nbytes / best_seconds(lambda: src.sum(), runs) / 1e9}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=7)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    f32, bf16 = gemm_peaks(a.runs)
    copy = copy_bandwidth(a.runs)
    read = read_bandwidth(a.runs)
    print(json.dumps({"threads": a.threads,
                      "f32_gflops": max(f32.values()), "bf16_gflops": max(bf16.values()),
                      "copy_gbs": max(copy.values()), "read_gbs": max(read.values()),
                      "detail": {"f32": f32, "bf16": bf16, "copy_gbs": copy, "read_gbs": read}}))


if __name__ == "__main__":
    main()
