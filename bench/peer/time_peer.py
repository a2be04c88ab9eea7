#!/usr/bin/python3
"""Times the PyTorch peer on the work bench/cpu_generate_bench.cpp times for our engine, and prints the
same JSON lines, so bench/run_cpu_bench.py can put them side by side:
  prefill: one forward of BATCH sequences x SEQ random ids keeping the last position's logits
           (logits_to_keep=1, as MOE_LOGITS_LAST); tokens/s = BATCH*SEQ / time.
  decode:  greedy generate after a PROMPT-id prompt, no stop ids. A generate of NEW+1 tokens minus one
           of 1 token (timed back to back, each run) is the time of NEW decode steps: both contain the
           same prefill and first token. tokens/s = NEW / that difference.
Warm-up runs first, then the median of RUNS. Ids come from the splitmix64 stream that the C++ bench
uses too (random_ids), so both engines see the same inputs.
Usage: time_peer.py CHECKPOINT [--dtype f32|bf16] [--threads 2] [--runs 5] [--warmup 1]
                    [--batch 8] [--seq 256] [--prompt 16] [--new 128]"""
import argparse
import json
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mixtral_torch  # noqa: E402

TORCH_DTYPES = {"f32": torch.float32, "bf16": torch.bfloat16}
PREFILL_IDS_SEED, PROMPT_IDS_SEED = 1, 2  # the C++ bench uses the same two streams
MASK64 = (1 << 64) - 1


def random_ids(seed, count, vocab):
    """count ids in [0, vocab): splitmix64 outputs from state `seed`, modulo vocab."""
    out, state = [], seed
    for _ in range(count):
        state = (state + 0x9E3779B97F4A7C15) & MASK64
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
        out.append((z ^ (z >> 31)) % vocab)
    return out


def timed(fn):
    t = time.perf_counter()
    result = fn()
    return time.perf_counter() - t, result


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("checkpoint")
    ap.add_argument("--dtype", choices=TORCH_DTYPES, default="f32")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--prompt", type=int, default=16)
    ap.add_argument("--new", type=int, default=128)
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    t_load, model = timed(lambda: mixtral_torch.load_model(a.checkpoint, TORCH_DTYPES[a.dtype]))
    vocab = model.config.vocab_size
    prefill_ids = torch.tensor(random_ids(PREFILL_IDS_SEED, a.batch * a.seq, vocab)).view(a.batch, a.seq)
    prompt = torch.tensor(random_ids(PROMPT_IDS_SEED, a.prompt, vocab))[None]
    common = {"engine": "pytorch", "dtype": a.dtype, "threads": torch.get_num_threads()}

    with torch.inference_mode():
        prefill = []
        for i in range(a.warmup + a.runs):
            t, _ = timed(lambda: model(prefill_ids, use_cache=True, logits_to_keep=1))
            if i >= a.warmup:
                prefill.append(t)
        decode = []
        for i in range(a.warmup + a.runs):
            t_first, _ = timed(lambda: mixtral_torch.generate_greedy(model, prompt, 1))
            t_all, tokens = timed(lambda: mixtral_torch.generate_greedy(model, prompt, a.new + 1))
            if i >= a.warmup:
                decode.append(t_all - t_first)

    n_prefill = a.batch * a.seq
    print(json.dumps(dict(common, phase="load", seconds=t_load)))
    print(json.dumps(dict(common, phase="prefill", batch=a.batch, seq=a.seq, tokens=n_prefill,
                          median_s=statistics.median(prefill), tokens_per_s=n_prefill / statistics.median(prefill),
                          runs_s=prefill)))
    print(json.dumps(dict(common, phase="decode", prompt=a.prompt, tokens=a.new,
                          median_s=statistics.median(decode), tokens_per_s=a.new / statistics.median(decode),
                          runs_s=decode, generated=tokens[0].tolist())), flush=True)


if __name__ == "__main__":
    main()
