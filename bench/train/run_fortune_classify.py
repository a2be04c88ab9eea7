#!/usr/bin/python3
"""Issue 4's fine-tune on a real task: which `fortunes` file a fortune comes from (5 categories,
make_fortune_categories.py), starting from the language model that run_fortunes_side_by_side.py
trained with `moe train`:

  full:  `moe finetune --task classify`, the lower half of the backbone (and the embedding) frozen
         (--freeze-layers), the upper half and the new classification head trained;
  lora:  `moe finetune --task classify --lora-rank R`: LoRA adapters on every layer's attention
         projections (with --lora-experts also on every routed expert) plus the head, the base
         weights fixed.

Held-out accuracy (the last 20% of the rows, balanced) is what `moe finetune` prints before training
(the untrained head) and after; the majority baseline is the largest class share of the held-out rows.
Prints a table, writes JSON.

Usage: /usr/bin/python3 bench/train/run_fortune_classify.py [--build build/trainrun]
       [--model build/trainrun/work/fortunes-ours] [--steps 150] [--from-scratch]"""
import argparse
import datetime
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from common import HERE, PY, REPO, log  # noqa: E402

ACCURACY = re.compile(r"(before|after) training: evaluation loss ([0-9.naninf]+), accuracy ([0-9.]+)")


def finetune(moe, model, data, out, held_out, a, flags):
    cmd = [moe, "finetune", "--model", model, "--data", data, "--out", out, "--task", "classify",
           "--num-labels", str(a.num_labels), "--steps", str(a.steps), "--batch-size", str(a.batch_size),
           "--schedule", "cosine", "--warmup", str(max(1, a.steps // 15)), "--weight-decay", "0.01",
           "--clip", "1.0", "--seed", str(a.seed), "--eval-fraction", str(held_out), "--eval-every", str(a.steps),
           "--threads", "2"] + flags
    _, err, run = common.timed(cmd)
    found = {m.group(1): (float(m.group(2)), float(m.group(3))) for m in ACCURACY.finditer(err)}
    if set(found) != {"before", "after"}:
        raise RuntimeError(f"moe finetune printed no before/after accuracy:\n{err[-2000:]}")
    steps, _ = common.metrics(os.path.join(out, "metrics.jsonl"))
    return {"command": " ".join(cmd), "accuracy_before": found["before"][1], "loss_before": found["before"][0],
            "accuracy_after": found["after"][1], "loss_after": found["after"][0],
            "tokens_per_s": steps[-1]["tokens_per_s"], "final_train_loss": steps[-1]["loss"], "run": run}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--build", default=os.path.join(REPO, "build", "trainrun"))
    p.add_argument("--model", default=None, help="the language model to start from (default: the side-by-side run's)")
    p.add_argument("--steps", type=int, default=150)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--lora-lr", type=float, default=3e-3)
    p.add_argument("--lora-rank", type=int, default=8)
    p.add_argument("--lora-alpha", type=float, default=16)
    p.add_argument("--lora-experts", action="store_true", help="adapters on the routed experts too")
    p.add_argument("--freeze-layers", type=int, default=None, help="default: half the model's layers")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--runs", default="full,lora", help="which fine-tunes to run: full, lora or both")
    p.add_argument("--from-scratch", action="store_true",
                   help="also fine-tune the same way from the untrained initial weights")
    p.add_argument("--json", default=None)
    a = p.parse_args()
    work = os.path.join(a.build, "work")
    model = a.model or os.path.join(work, "fortunes-ours")
    if not os.path.exists(os.path.join(model, "model.safetensors")):
        raise SystemExit(f"{model} holds no model: run bench/train/run_fortunes_side_by_side.py first (or give --model)")
    with open(os.path.join(model, "config.json")) as f:
        layers = json.load(f)["num_hidden_layers"]
    freeze = layers // 2 if a.freeze_layers is None else a.freeze_layers
    data = os.path.join(work, "categories.safetensors")
    made = common.timed([PY, os.path.join(HERE, "make_fortune_categories.py"), "--tokenizer",
                         os.path.join(model, "tokenizer.json"), "--build", a.build, "--out", data,
                         "--seed", str(a.seed)], lock=False)[0]
    info = json.loads(made.strip().splitlines()[-1])
    a.num_labels = len(info["classes"])
    moe = os.path.join(a.build, "bin", "moe")
    held = info["held_out_fraction"]
    runs = {}
    chosen = a.runs.split(",")
    if "full" in chosen:
        runs["full"] = finetune(moe, model, data, os.path.join(work, "classify-full"), held, a,
                                ["--lr", str(a.lr), "--freeze-layers", str(freeze)])
    if "lora" in chosen:
        runs["lora"] = finetune(moe, model, data, os.path.join(work, "classify-lora"), held, a,
                                ["--lr", str(a.lora_lr), "--lora-rank", str(a.lora_rank), "--lora-alpha",
                                 str(a.lora_alpha)] + (["--lora-experts"] if a.lora_experts else []))
    if a.from_scratch:
        init = os.path.join(work, "fortunes-init")
        runs["full, from the untrained weights"] = finetune(
            moe, init, data, os.path.join(work, "classify-scratch"), held, a,
            ["--lr", str(a.lr), "--freeze-layers", str(freeze)])
    gap = 100 * (runs["full"]["accuracy_after"] - runs["lora"]["accuracy_after"]) if len(runs) >= 2 else None
    result = {"date": datetime.datetime.utcnow().isoformat(timespec="seconds") + "Z", "model": model,
              "dataset": info, "freeze_layers": freeze, "runs": runs, "lora_gap_points": gap,
              "pass": {"lora_within_2_points": abs(gap) <= 2.0 if gap is not None else None}}
    path = a.json or os.path.join(work, "fortune_classify.json")
    with open(path, "w") as f:
        json.dump(result, f, indent=1)
    log(f"wrote {path}")
    print(f"fortune categories {info['classes']}: {info['rows'] - info['held_out_rows']} training / "
          f"{info['held_out_rows']} held-out fortunes, {info['seq_len']} tokens; majority baseline "
          f"{100 * info['majority_baseline']:.1f}%")
    print(f"{'fine-tune':36}{'acc. before':>12}{'acc. after':>12}{'loss after':>12}{'tokens/s':>10}")
    for name, r in runs.items():
        label = {"full": f"full, layers < {freeze} frozen", "lora": f"LoRA r={a.lora_rank}, attention" + (" + experts" if a.lora_experts else "")}.get(name, name)
        print(f"{label:36}{100 * r['accuracy_before']:11.1f}%{100 * r['accuracy_after']:11.1f}%"
              f"{r['loss_after']:12.4f}{r['tokens_per_s']:10.0f}")
    if gap is not None:
        print(f"LoRA - full: {-gap:+.1f} points")


if __name__ == "__main__":
    main()
