#!/usr/bin/python3
"""The GPU benchmark of issue 5: our engine (CUDA backend) and transformers side by side, in one run, on
one random-weight checkpoint of the "seed-1.2B" config (bench/configs/seed-1.2b-mixtral.json: Mixtral,
vocab 32000, d_model 1024, 16 layers, 16 heads, 16 experts top-2, expert width 1408), bf16 weights:
  prefill    32 x 128 ids, last-position logits (ours with MOE_CUDA_F32_MATH=bf16: the attention on bf16
             tensor cores, as the peer's bf16 model computes it; prefill_f32 is ours with the exact f32
             attention, against the same peer run)
  decode     greedy, 16-id prompts, batch 1 and batch 64
  train      16 x 512 ids, one AdamW step (ours trains f32 weights: the trainer's requirement; with
             MOE_CUDA_F32_MATH=bf16 its products run on bf16 tensor cores like the peer's)
Each phase runs ours, then the peer, each a fresh process with warm-up and RUNS timed runs (median).
FLOPs and bytes are counted from the config; MFU is against the bf16 matrix product rate measured in
the same run, decode bandwidth use against the measured copy bandwidth.
Prints the table last and writes every JSON line to --json.

Usage: bench/gpu/run_gpu_bench.py [--build build/gpu] [--checkpoint DIR] [--runs 5] [--json FILE]
                                  [--phases prefill,prefill_f32,decode1,decode64,train]"""
import argparse
import datetime
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CONFIG = os.path.join(ROOT, "bench", "configs", "seed-1.2b-mixtral.json")

# Both engines take the same arguments for a phase.
PHASES = {
    "prefill": ["--phase", "prefill", "--batch", "32", "--seq", "128"],
    "prefill_f32": ["--phase", "prefill", "--batch", "32", "--seq", "128"],
    "decode1": ["--phase", "decode", "--batch", "1", "--prompt", "16", "--new", "64"],
    "decode64": ["--phase", "decode", "--batch", "64", "--prompt", "16", "--new", "16"],
    "train": ["--phase", "train", "--batch", "16", "--seq", "512"],
}
GOALS = {"prefill": 4.0, "prefill_f32": 4.0, "decode1": 30.0, "decode64": 4.0, "train": 3.0}
# Our process's environment per phase (the peer's is the same for all). A bf16 model's prefill and training
# compute their f32 activations' products in bf16 as the peer does: attention on bf16 tensor cores.
OURS_ENV = {"prefill": {"MOE_CUDA_F32_MATH": "bf16"}, "train": {"MOE_CUDA_F32_MATH": "bf16"}}
# Phases that time ours only, against the peer run of another phase.
PEER_OF = {"prefill_f32": "prefill"}


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def run_json(cmd, env=None, timeout=1800):
    log("$", " ".join(cmd))
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    sys.stderr.write(p.stderr[-4000:])
    if p.returncode != 0:
        log(f"exit status {p.returncode}")
        return None
    lines = [l for l in p.stdout.splitlines() if l.startswith("{")]
    return json.loads(lines[-1]) if lines else None


def costs(cfg):
    """Per phase: useful FLOPs of one timed unit, and for decode the bytes of weights one step reads."""
    d, f, vocab, layers = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"], cfg["num_hidden_layers"]
    heads = cfg["num_attention_heads"]
    kv = cfg.get("num_key_value_heads") or heads
    hd = d // heads
    experts, top_k = cfg["num_local_experts"], cfg["num_experts_per_tok"]
    attn_w = 2 * d * heads * hd + 2 * d * kv * hd
    per_token_layer = 2 * attn_w + 2 * d * experts + top_k * 2 * 3 * d * f  # matrix FLOPs per token per layer

    def causal_attention(seq):  # QK^T and PV of one sequence in one layer, keys each query sees
        return 4 * heads * hd * seq * (seq + 1) // 2

    out = {}
    b, s = 32, 128
    out["prefill"] = {"flops": b * (layers * (s * per_token_layer + causal_attention(s)) + 2 * d * vocab)}
    out["prefill_f32"] = out["prefill"]
    b, s = 16, 512
    forward = b * (layers * (s * per_token_layer + causal_attention(s)) + s * 2 * d * vocab)
    out["train"] = {"flops": 3 * forward}  # forward, and twice that backward
    for name, batch, new, prompt in (("decode1", 1, 64, 16), ("decode64", 64, 16, 16)):
        # Weights one decode step reads: attention, router, the experts the batch's tokens choose (every
        # expert once a batch chooses them all), LM head; bf16.
        chosen = min(experts, batch * top_k)
        weight_bytes = 2 * (layers * (attn_w + experts * d + chosen * 3 * d * f) + vocab * d)
        ctx = prompt + new / 2
        step_flops = batch * (layers * (per_token_layer + 4 * heads * hd * ctx) + 2 * d * vocab)
        out[name] = {"flops": step_flops * new, "bytes": weight_bytes * new}
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build", "gpu"))
    ap.add_argument("--checkpoint", default="/tmp/moe_seed_1.2b_bf16")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--json", default=None)
    ap.add_argument("--phases", default="prefill,prefill_f32,decode1,decode64,train")
    a = ap.parse_args()
    if not os.path.exists(os.path.join(a.checkpoint, "model.safetensors")):
        subprocess.run([sys.executable, os.path.join(ROOT, "bench", "make_random_checkpoint.py"), CONFIG, a.checkpoint,
                        "--seed", "0", "--dtype", "bf16"], check=True, stdout=sys.stderr)
    with open(CONFIG) as f:
        cfg = json.load(f)
    ours_bin = os.path.join(a.build, "bin", "moe_bench_gpu")
    peer = os.path.join(HERE, "peer_transformers.py")
    env = dict(os.environ, NCCL_NVLS_ENABLE="0", MOE_PLUGIN_PATH=os.path.join(a.build, "lib", "moe", "plugins"))
    results = []
    ceil = run_json([sys.executable, peer, a.checkpoint, "--phase", "ceilings"], env)
    results.append(ceil)
    cost = costs(cfg)
    rows = []
    peer_runs = {}
    for name in a.phases.split(","):
        args = PHASES[name] + ["--runs", str(a.runs)]
        ours = run_json([ours_bin, a.checkpoint] + args, dict(env, **OURS_ENV.get(name, {})))
        peer_phase = PEER_OF.get(name, name)
        if peer_phase not in peer_runs:
            peer_runs[peer_phase] = run_json([sys.executable, peer, a.checkpoint] + PHASES[peer_phase] +
                                             ["--runs", str(a.runs)], env)
            if peer_runs[peer_phase]:
                results.append(peer_runs[peer_phase])
        theirs = peer_runs[peer_phase]
        if ours:
            ours["phase_name"] = name
            results.append(ours)
        rows.append((name, ours, theirs))
        if ours and theirs:  # at once, so that a run cut short still shows the phases it finished
            log(f"== {name}: ours {ours['tokens_per_s']:.1f} tok/s, peer {theirs['tokens_per_s']:.1f} tok/s, "
                f"{ours['tokens_per_s'] / theirs['tokens_per_s']:.2f}x (goal {GOALS[name]:.0f}x)")

    print()
    print(f"GPU benchmark, seed-1.2B Mixtral, bf16 weights, {datetime.date.today()}, "
          f"{(ceil or {}).get('device', '?')}")
    if ceil:
        print(f"ceilings: bf16 GEMM {ceil['bf16_gemm_tflops']:.0f} TFLOP/s, copy {ceil['copy_tb_per_s']:.2f} TB/s")
    print(f"{'phase':10} {'ours tok/s':>12} {'peer tok/s':>12} {'ratio':>7} {'goal':>6} {'ours MFU':>9} "
          f"{'peer MFU':>9} {'ours BW':>8}")
    for name, ours, theirs in rows:
        o = ours["tokens_per_s"] if ours else float("nan")
        t = theirs["tokens_per_s"] if theirs else float("nan")
        c = cost[name]
        mfu = lambda r: (c["flops"] / r["median_s"] / 1e12 / ceil["bf16_gemm_tflops"]) if (r and ceil) else float("nan")
        bw = (c["bytes"] / ours["median_s"] / 1e12 / ceil["copy_tb_per_s"]) if ("bytes" in c and ours and ceil) \
            else float("nan")
        print(f"{name:10} {o:12.1f} {t:12.1f} {o / t:7.2f} {GOALS[name]:6.0f}x {100 * mfu(ours):8.1f}% "
              f"{100 * mfu(theirs):8.1f}% {100 * bw:7.1f}%")
    if a.json:
        with open(a.json, "w") as f:
            for r in results:
                f.write(json.dumps(r) + "\n")


if __name__ == "__main__":
    main()
