#!/usr/bin/python3
"""The peer of bench/gpu/gpu_bench.cpp: transformers (eager attention and eager experts) on PyTorch and
CUDA, on the same checkpoint and the same random ids, one phase per run, printing the same JSON line:
  prefill  model(ids [BATCH, SEQ], logits_to_keep=1) under no_grad; tokens/s = BATCH*SEQ / time.
  decode   greedy generate of NEW+1 tokens minus one of 1 token (timed back to back each run) after
           [BATCH, PROMPT] prompts: NEW batched decode steps; tokens/s = BATCH*NEW / that difference.
  train    loss = model(ids, labels=ids).loss; backward; torch.optim.AdamW step; zero_grad, on bf16
           weights; tokens/s = BATCH*SEQ / time.
Also `--phase ceilings`: the measured ceilings MFU and bandwidth use are taken against (a bf16 matrix
product of 8192^3 on random data, and a device-to-device copy counting bytes read plus written).
Times are CUDA-synchronised wall clock, warm-up runs first, then the median of RUNS.
Usage: peer_transformers.py CHECKPOINT --phase prefill|decode|train|ceilings [--batch N] [--seq N]
                            [--prompt N] [--new N] [--runs N] [--warmup N]"""
import argparse
import json
import statistics
import time

import torch

PREFILL_IDS_SEED, PROMPT_IDS_SEED, TRAIN_IDS_SEED = 1, 2, 3  # gpu_bench.cpp uses the same streams
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


def seconds(fn):
    torch.cuda.synchronize()
    t = time.perf_counter()
    fn()
    torch.cuda.synchronize()
    return time.perf_counter() - t


def timed_runs(a, once):
    times = [once() for _ in range(a.warmup + a.runs)]
    return times[a.warmup:]


def ceilings(runs):
    """The bf16 matrix rate and the copy bandwidth of this GPU, best of `runs` after a warm-up."""
    n = 8192
    x, y = torch.randn(n, n, device="cuda", dtype=torch.bfloat16), torch.randn(n, n, device="cuda",
                                                                              dtype=torch.bfloat16)
    gemm = min(seconds(lambda: x @ y) for _ in range(runs + 1))
    src = torch.randn(1 << 30, device="cuda", dtype=torch.float32)  # 4 GiB
    dst = torch.empty_like(src)
    copy = min(seconds(lambda: dst.copy_(src)) for _ in range(runs + 1))
    return {"engine": "peer", "phase": "ceilings", "bf16_gemm_tflops": 2.0 * n ** 3 / gemm / 1e12,
            "copy_tb_per_s": 2.0 * src.numel() * 4 / copy / 1e12, "device": torch.cuda.get_device_name()}


def load(checkpoint):
    from transformers import AutoModelForCausalLM
    model = AutoModelForCausalLM.from_pretrained(checkpoint, dtype=torch.bfloat16, attn_implementation="eager")
    if hasattr(model, "set_experts_implementation"):
        model.set_experts_implementation("eager")
    return model.cuda()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("checkpoint")
    ap.add_argument("--phase", required=True, choices=["prefill", "decode", "train", "ceilings"])
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--prompt", type=int, default=16)
    ap.add_argument("--new", type=int, default=64)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    a = ap.parse_args()
    if a.phase == "ceilings":
        print(json.dumps(ceilings(a.runs)), flush=True)
        return

    import transformers
    model = load(a.checkpoint)
    vocab = model.config.vocab_size
    if a.phase == "prefill":
        ids = torch.tensor(random_ids(PREFILL_IDS_SEED, a.batch * a.seq, vocab), device="cuda").view(a.batch, a.seq)
        model.eval()
        with torch.no_grad():
            times = timed_runs(a, lambda: seconds(lambda: model(ids, logits_to_keep=1, use_cache=False)))
        tokens = a.batch * a.seq
    elif a.phase == "decode":
        prompts = torch.tensor(random_ids(PROMPT_IDS_SEED, a.batch * a.prompt, vocab), device="cuda")
        prompts = prompts.view(a.batch, a.prompt)
        mask = torch.ones_like(prompts)
        model.eval()

        def generate(count):
            out = model.generate(prompts, attention_mask=mask, max_new_tokens=count, min_new_tokens=count,
                                 do_sample=False, pad_token_id=0)
            assert out.shape[1] == a.prompt + count, out.shape

        with torch.no_grad():
            times = timed_runs(a, lambda: seconds(lambda: generate(a.new + 1)) - seconds(lambda: generate(1)))
        tokens = a.batch * a.new
    else:
        ids = torch.tensor(random_ids(TRAIN_IDS_SEED, a.batch * a.seq, vocab), device="cuda").view(a.batch, a.seq)
        model.train()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

        def step():
            loss = model(ids, labels=ids, use_cache=False).loss
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)

        times = timed_runs(a, lambda: seconds(step))
        tokens = a.batch * a.seq
    median = statistics.median(times)
    print(json.dumps({"engine": "peer", "phase": a.phase, "batch": a.batch, "seq": a.seq, "prompt": a.prompt,
                      "new": a.new, "median_s": median, "tokens_per_s": tokens / median, "runs_s": times,
                      "torch": torch.__version__, "transformers": transformers.__version__,
                      "attn_implementation": model.config._attn_implementation,
                      "experts_implementation": getattr(model.config, "_experts_implementation", "n/a")}),
          flush=True)


if __name__ == "__main__":
    main()
