#!/usr/bin/env python3
"""Hugging Face `tokenizers` (the Rust library through its Python package) on the benchmark corpus:
single-threaded encode of every line (best of --repeat runs). Prints one JSON object; with
--ids-out writes the ids of every line (to check they equal ours).
usage: bench_hf_tokenizers.py TOKENIZER_JSON CORPUS [--repeat N] [--ids-out FILE]
"""
import argparse
import json
import os
import time

# One thread for the Rust side too (encode_batch would otherwise use a thread pool).
os.environ["RAYON_NUM_THREADS"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"

import tokenizers  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("tokenizer")
    ap.add_argument("corpus")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--ids-out")
    args = ap.parse_args()
    t = time.perf_counter()
    tok = tokenizers.Tokenizer.from_file(args.tokenizer)
    load_s = time.perf_counter() - t
    with open(args.corpus, encoding="utf-8", newline="\n") as f:
        lines = f.read().split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    size = sum(len(l.encode("utf-8")) for l in lines)
    # Wall time and this thread's CPU time (the steadier measure on a shared machine).
    best, best_cpu, best_batch, encodings = float("inf"), float("inf"), float("inf"), None
    for _ in range(args.repeat):
        t, c = time.perf_counter(), time.thread_time()
        encodings = [tok.encode(l, add_special_tokens=False) for l in lines]
        best_cpu = min(best_cpu, time.thread_time() - c)
        best = min(best, time.perf_counter() - t)
        t = time.perf_counter()
        tok.encode_batch(lines, add_special_tokens=False)
        best_batch = min(best_batch, time.perf_counter() - t)
    ids = sum(len(e.ids) for e in encodings)
    if args.ids_out:
        with open(args.ids_out, "w") as f:
            for e in encodings:
                f.write(" ".join(map(str, e.ids)) + "\n")
    print(json.dumps({"implementation": f"tokenizers {tokenizers.__version__} (Rust, via Python)", "lines": len(lines),
                      "bytes": size, "ids": ids, "load_s": load_s, "encode_lines_mb_s": size / 1e6 / best,
                      "encode_lines_mb_cpu_s": size / 1e6 / best_cpu,
                      "encode_batch_1_thread_mb_s": size / 1e6 / best_batch}))


if __name__ == "__main__":
    main()
