#!/usr/bin/python3
"""Issue 4's side-by-side training run: a small Mixtral-architecture MoE language model trained from
scratch on the `fortunes` corpus (5% held out) on the CPU, once with `moe train` and once with the
PyTorch peer (torch_peer_train.py: transformers' MixtralForCausalLM ported to torch 1.13, AdamW), both
from the same initial weights (moe_model_create, saved in transformers' layout), on the same
tokenised sequences (one input_ids .safetensors), in the same batch order (core/train/data_order.cpp,
reproduced by data_order.py), with the same hyper-parameters, 2 threads each.

Reports: both runs' training loss along the way, the final held-out loss of each (the peer must land
within 2% of ours), and training tokens/s (steps x batch x seq_len over the training time, evaluation
excluded) with their ratio. Each run is timed under flock /tmp/moe-bench.lock; the CPU time each used
over its wall time says how contended the machine was. Prints a table last and writes JSON.

Usage: /usr/bin/python3 bench/train/run_fortunes_side_by_side.py [--build build/trainrun]
       [--steps 150] [--batch-size 8] [--seq-len 128] [--json FILE]"""
import argparse
import datetime
import json
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from common import BENCH, HERE, PY, REPO, log  # noqa: E402

sys.path.insert(0, BENCH)
import run_cpu_bench  # noqa: E402  (the peer's measured-fastest correct BLAS environment; machine facts)


def hyper(a):
    """The options both trainers get (names as `moe train` spells them)."""
    return ["--steps", str(a.steps), "--batch-size", str(a.batch_size), "--lr", str(a.lr), "--schedule", "cosine",
            "--warmup", str(a.warmup), "--weight-decay", str(a.weight_decay), "--clip", str(a.clip),
            "--aux-loss", str(a.aux_loss), "--seed", str(a.seed), "--eval-fraction", str(a.eval_fraction)]


def window_mean(steps, lo, hi):
    return statistics.mean(s["loss"] for s in steps if lo < s["step"] <= hi)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--build", default=os.path.join(REPO, "build", "trainrun"))
    p.add_argument("--config", default=os.path.join(HERE, "fortunes-mixtral.json"))
    p.add_argument("--steps", type=int, default=150)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--warmup", type=int, default=15)
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--clip", type=float, default=1.0)
    p.add_argument("--aux-loss", type=float, default=0.01)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--eval-fraction", type=float, default=0.05)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--peer-env", default=run_cpu_bench.PEER_ENV_DEFAULT, choices=sorted(run_cpu_bench.PEER_ENVS))
    p.add_argument("--json", default=None)
    a = p.parse_args()
    work = os.path.join(a.build, "work")
    os.makedirs(work, exist_ok=True)
    data = common.fortunes_tokens(a.build, work, a.seq_len)
    init = common.initial_checkpoint(a.build, a.config, a.seed, os.path.join(work, "fortunes-init"))
    ours_dir, peer_dir = os.path.join(work, "fortunes-ours"), os.path.join(work, "fortunes-peer")

    moe = os.path.join(a.build, "bin", "moe")
    ours_cmd = [moe, "train", "--model", init, "--data", data, "--out", ours_dir, "--threads", str(a.threads),
                "--eval-every", str(a.steps)] + hyper(a)
    _, ours_err, ours_run = common.timed(ours_cmd)
    ours_steps, ours_evals = common.metrics(os.path.join(ours_dir, "metrics.jsonl"))
    # The last step's tokens/s spans every step (RunLog starts its clock after loading the data);
    # the one evaluation comes after it.
    ours_tps = ours_steps[-1]["tokens_per_s"]

    env = run_cpu_bench.environment(a.peer_env)
    env["OMP_NUM_THREADS"] = str(a.threads)
    peer_cmd = [PY, os.path.join(HERE, "torch_peer_train.py"), "--init", init, "--data", data, "--out", peer_dir,
                "--threads", str(a.threads)] + hyper(a)
    peer_out, _, peer_run = common.timed(peer_cmd, env=env)
    peer = json.loads(peer_out.strip().splitlines()[-1])
    peer_steps, peer_evals = common.metrics(os.path.join(peer_dir, "metrics.jsonl"))

    ours_eval, peer_eval = ours_evals[-1]["eval_loss"], peer_evals[-1]["eval_loss"]
    eval_gap = (peer_eval - ours_eval) / ours_eval
    speedup = ours_tps / peer["tokens_per_s"]
    cuts = sorted({1, 10, a.steps // 4, a.steps // 2, 3 * a.steps // 4, a.steps})
    curve = [{"step": s, "ours": next(x["loss"] for x in ours_steps if x["step"] == s),
              "peer": next(x["loss"] for x in peer_steps if x["step"] == s)} for s in cuts]
    first_diverging = next((o["step"] for o, q in zip(ours_steps, peer_steps)
                            if abs(o["loss"] - q["loss"]) > 1e-3 * abs(q["loss"])), None)
    last = max(1, a.steps // 10)
    result = {
        "date": datetime.datetime.utcnow().isoformat(timespec="seconds") + "Z",
        "machine": run_cpu_bench.machine_info(),
        "config": json.load(open(a.config)), "seq_len": a.seq_len, "hyper": hyper(a),
        "data": {"file": os.path.relpath(data, REPO), "train_sequences": peer["train_sequences"],
                 "held_out_sequences": peer["held_out_sequences"]},
        "ours": {"command": " ".join(ours_cmd), "tokens_per_s": ours_tps, "eval_loss": ours_eval, "run": ours_run,
                 "last_steps_mean_loss": window_mean(ours_steps, a.steps - last, a.steps)},
        "peer": {"command": " ".join(peer_cmd), "env": a.peer_env, "tokens_per_s": peer["tokens_per_s"],
                 "eval_loss": peer_eval, "run": peer_run, "torch": peer["torch"], "threads": peer["threads"],
                 "blas": peer["blas"], "blas_libraries": peer["blas_libraries"],
                 "last_steps_mean_loss": window_mean(peer_steps, a.steps - last, a.steps)},
        "eval_loss_gap": eval_gap, "speedup": speedup, "loss_curve": curve,
        "first_step_differing_by_1e-3": first_diverging,
        "pass": {"eval_within_2pct": abs(eval_gap) <= 0.02, "speedup_at_least_1.5": speedup >= 1.5},
    }
    path = a.json or os.path.join(work, "fortunes_side_by_side.json")
    with open(path, "w") as f:
        json.dump(result, f, indent=1)
    log(f"wrote {path}")

    print(f"fortunes side by side: {a.steps} steps x {a.batch_size} x {a.seq_len} tokens, "
          f"{result['data']['train_sequences']} training / {result['data']['held_out_sequences']} held-out sequences")
    print(f"{'':28}{'moe train':>14}{'PyTorch peer':>14}")
    for c in curve:
        print(f"{'training loss, step ' + str(c['step']):28}{c['ours']:14.4f}{c['peer']:14.4f}")
    print(f"{'mean loss, last ' + str(last) + ' steps':28}{result['ours']['last_steps_mean_loss']:14.4f}"
          f"{result['peer']['last_steps_mean_loss']:14.4f}")
    print(f"{'held-out loss':28}{ours_eval:14.4f}{peer_eval:14.4f}   peer - ours: {100 * eval_gap:+.2f}%")
    print(f"{'training tokens/s':28}{ours_tps:14.1f}{peer['tokens_per_s']:14.1f}   ours / peer: {speedup:.2f}x")
    print(f"{'CPU s / wall s (2 = alone)':28}{ours_run['cpu_s'] / ours_run['wall_s']:14.2f}"
          f"{peer_run['cpu_s'] / peer_run['wall_s']:14.2f}")
    print(f"{'load average before':28}{ours_run['load_before'][0]:14.2f}{peer_run['load_before'][0]:14.2f}")
    print(f"peer: torch {peer['torch']}, {peer['threads']} threads, {peer['blas']['config']}, "
          f"kernel {peer['blas']['corename']}, env {a.peer_env}")
    print(f"first step whose losses differ by more than 1e-3 relative: {first_diverging}")


if __name__ == "__main__":
    main()
