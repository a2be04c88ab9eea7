#!/usr/bin/python3
"""Issue 4's expert load balance report: short `moe train` runs on the fortunes corpus, same data,
batches, steps and learning rate, one per balancing method on the architecture that has it:

  mixtral, no balancing            (the baseline: top-2 softmax routing, nothing pushing toward balance)
  mixtral, --aux-loss 0.01 and 0.1 (Switch/Mixtral load-balancing loss, transformers' formula)
  mixtral, --gating gumbel         (experts chosen from (logits + Gumbel noise) / T, T annealed 1 -> 0.5)
  deepseek_v3, no balancing        (sigmoid routing with a selection bias that stays 0)
  deepseek_v3, --bias-update-speed 0.001 and 0.01 (DeepSeek-V3's auxiliary-loss-free bias update;
                                   0.001 is DeepSeek-V3's own gamma, made for a far longer run)

and reports max / mean tokens per expert (routed assignments of the busiest expert over the mean,
averaged over MoE layers; 1 = even, E / k = every token on the same k experts): per step from
`expert_balance` of metrics.jsonl (at step 1 and averaged over the last quarter of the run), and over
the whole run from expert_load.json (`moe train` writes it: tokens per expert per layer, summed over
all steps), with each layer's ratio; plus the held-out loss. Prints a table, writes JSON.

Usage: /usr/bin/python3 bench/train/run_expert_balance.py [--build build/trainrun] [--steps 80]
       [--only "aux-loss 0.1" ...] (runs whose method is one of these)"""
import argparse
import datetime
import json
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from common import HERE, REPO, log  # noqa: E402

RUNS = [
    ("mixtral", "none", "fortunes-mixtral.json", []),
    ("mixtral", "aux-loss 0.01", "fortunes-mixtral.json", ["--aux-loss", "0.01"]),
    ("mixtral", "aux-loss 0.1", "fortunes-mixtral.json", ["--aux-loss", "0.1"]),
    ("mixtral", "gumbel T 1 -> 0.5", "fortunes-mixtral.json",
     ["--gating", "gumbel", "--gumbel-temperature", "1.0", "--gumbel-temperature-final", "0.5"]),
    ("deepseek_v3", "none", "fortunes-deepseek-v3.json", []),
    ("deepseek_v3", "bias update 0.001", "fortunes-deepseek-v3.json", ["--bias-update-speed", "0.001"]),
    ("deepseek_v3", "bias update 0.01", "fortunes-deepseek-v3.json", ["--bias-update-speed", "0.01"]),
]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--build", default=os.path.join(REPO, "build", "trainrun"))
    p.add_argument("--steps", type=int, default=80)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--only", action="append", default=None, help="run only this method (repeatable)")
    p.add_argument("--json", default=None)
    a = p.parse_args()
    work = os.path.join(a.build, "work")
    os.makedirs(work, exist_ok=True)
    data = common.fortunes_tokens(a.build, work, a.seq_len)
    moe = os.path.join(a.build, "bin", "moe")
    rows = []
    for arch, method, config, flags in RUNS:
        if a.only and method not in a.only:
            continue
        init = common.initial_checkpoint(a.build, os.path.join(HERE, config), a.seed,
                                         os.path.join(work, "balance-init-" + arch))
        out = os.path.join(work, "balance-" + arch + "-" + "-".join(method.split()[:3]).replace(">", ""))
        cmd = [moe, "train", "--model", init, "--data", data, "--out", out, "--steps", str(a.steps),
               "--batch-size", str(a.batch_size), "--lr", "3e-3", "--schedule", "cosine", "--warmup", "10",
               "--clip", "1.0", "--weight-decay", "0.01", "--seed", str(a.seed), "--eval-fraction", "0.05",
               "--eval-every", str(a.steps), "--threads", "2"] + flags
        _, _, run = common.timed(cmd)
        steps, evals = common.metrics(os.path.join(out, "metrics.jsonl"))
        tail = [s["expert_balance"] for s in steps if s["step"] > a.steps - a.steps // 4]
        expert_load = os.path.join(out, "expert_load.json")
        load = json.load(open(expert_load)) if os.path.exists(expert_load) else None
        rows.append({"architecture": arch, "method": method, "command": " ".join(cmd),
                     "balance_first_step": steps[0]["expert_balance"],
                     "balance_last_quarter_mean": statistics.mean(tail), "balance_last_quarter_max": max(tail),
                     "eval_loss": evals[-1]["eval_loss"], "final_train_loss": steps[-1]["loss"], "run": run,
                     "whole_run_max_over_mean": load["max_over_mean"] if load else None,
                     "whole_run_per_layer": [x["max_over_mean"] for x in load["layers"]] if load else None,
                     "expert_load": load})
        log(rows[-1]["architecture"], rows[-1]["method"], rows[-1]["balance_last_quarter_mean"])
    path = a.json or os.path.join(work, "expert_balance.json")
    with open(path, "w") as f:
        json.dump({"date": datetime.datetime.utcnow().isoformat(timespec="seconds") + "Z", "steps": a.steps,
                   "batch_size": a.batch_size, "seq_len": a.seq_len, "runs": rows}, f, indent=1)
    log(f"wrote {path}")
    print(f"expert load balance: {a.steps} steps x {a.batch_size} x {a.seq_len} tokens on fortunes; "
          f"max / mean tokens per routed expert (8 experts, top-2: 1 = even, 4 = collapsed)")
    print(f"{'architecture':14}{'balancing':22}{'step 1':>8}{'last 1/4 mean':>15}{'whole run':>11}"
          f"{'per layer (whole run)':>26}{'held-out loss':>15}")
    for r in rows:
        whole = r["whole_run_max_over_mean"]
        layers = " ".join(f"{x:.2f}" for x in r["whole_run_per_layer"]) if whole is not None else "-"
        print(f"{r['architecture']:14}{r['method']:22}{r['balance_first_step']:8.2f}{r['balance_last_quarter_mean']:15.2f}"
              f"{whole if whole is not None else float('nan'):11.2f}{layers:>26}{r['eval_loss']:15.4f}")


if __name__ == "__main__":
    main()
