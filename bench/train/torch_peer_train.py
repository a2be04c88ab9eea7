#!/usr/bin/python3
"""The PyTorch peer of `moe train`: trains bench/peer/mixtral_torch.py's port of transformers'
MixtralForCausalLM on the same .safetensors `input_ids`, from the same initial checkpoint, with the
same batches and hyper-parameters, the way transformers + torch.optim.AdamW would:

- loss: transformers' ForCausalLMLoss (logits at t score the id at t + 1, mean over labelled tokens)
  plus router_aux_loss_coef x load_balancing_loss_func (transformers 5.17, Mixtral) over every layer's
  router logits, which a forward hook on each router collects (what output_router_logits returns);
- optimizer: torch.optim.AdamW(lr, betas, eps, weight_decay) over every weight, one parameter group;
  torch.nn.utils.clip_grad_norm_ on the global norm;
- learning rate: core/train/trainer.cpp's Trainer::learning_rate (linear warmup over `warmup` steps,
  then constant or cosine to lr x min_lr_ratio at `steps`), set on the group before every step;
- data: core/train/data_order.cpp's batches (data_order.py), the last --eval-fraction held out.

Writes metrics.jsonl (one line per step, then the evaluation) to --out and prints a JSON summary.
Usage: torch_peer_train.py --init DIR --data FILE.safetensors --out DIR --steps N --batch-size B
       [--lr --warmup --schedule --weight-decay --clip --aux-loss --seed --eval-fraction --threads]"""
import argparse
import json
import math
import os
import sys
import time

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
BENCH = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(BENCH, "peer"))
import data_order  # noqa: E402
import mixtral_torch  # noqa: E402
import token_data  # noqa: E402
from blas_probe import blas_libraries, openblas_info  # noqa: E402


def learning_rate(a, step_taken):
    """Trainer::learning_rate for the step about to be taken (step_taken = steps done so far)."""
    step = step_taken + 1
    if a.warmup > 0 and step <= a.warmup:
        return a.lr * step / a.warmup
    if a.schedule == "constant":
        return a.lr
    span = max(1.0, a.steps - a.warmup)
    progress = min(1.0, (step - a.warmup) / span)
    return a.lr * (a.min_lr_ratio + (1 - a.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def load_balancing_loss_func(gate_logits, num_experts, top_k):
    """transformers 5.17 models/mixtral/modeling_mixtral.py, without an attention mask."""
    tokens_per_expert_sum = torch.zeros(num_experts, dtype=torch.float32)
    router_prob_sum = torch.zeros(num_experts, dtype=torch.float32)
    total_rows = 0.0
    for layer_gate in gate_logits:
        routing_weights = torch.nn.functional.softmax(layer_gate, dim=-1)
        _, selected_experts = torch.topk(routing_weights, top_k, dim=-1)
        tokens_per_expert_sum = tokens_per_expert_sum + torch.bincount(
            selected_experts.reshape(-1), minlength=num_experts).float()
        router_prob_sum = router_prob_sum + routing_weights.float().sum(dim=0)
        total_rows = total_rows + routing_weights.shape[0]
    tokens_per_expert = tokens_per_expert_sum / total_rows
    router_prob_per_expert = router_prob_sum / total_rows
    overall_loss = torch.sum(tokens_per_expert * router_prob_per_expert.unsqueeze(0))
    return overall_loss * num_experts


def expert_balance(gate_logits, num_experts, top_k):
    """What moe_train_stats.expert_balance reports: max over mean assignments per expert, averaged over layers."""
    ratios = []
    for g in gate_logits:
        counts = torch.bincount(torch.topk(g, top_k, dim=-1)[1].reshape(-1), minlength=num_experts).double()
        ratios.append(float(counts.max() / counts.mean()))
    return sum(ratios) / len(ratios)


def causal_lm_loss(logits, ids):
    """ForCausalLMLoss: labels = ids shifted left, the last position ignored; mean over the rest."""
    return F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]).float(), ids[:, 1:].reshape(-1))


def build_model(init_dir):
    with open(os.path.join(init_dir, "config.json")) as f:
        config = mixtral_torch.MixtralConfig(json.load(f))
    model = mixtral_torch.MixtralForCausalLM(config)
    sd = mixtral_torch.load_state_dict(init_dir)
    if config.tie_word_embeddings:
        sd["lm_head.weight"] = sd["model.embed_tokens.weight"]
    model.load_state_dict({k: v.float().clone() for k, v in sd.items()}, strict=True)
    model.requires_grad_(True)
    router_logits = []
    for layer in model.model.layers:
        layer.mlp.gate.register_forward_hook(lambda _m, _i, out: router_logits.append(out[0]))
    return model, config, router_logits


def evaluate(model, router_logits, held_out, batch):
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(held_out), batch):
            ids = held_out[start:start + batch]
            router_logits.clear()
            logits, _ = model(ids)
            n = ids.shape[0] * (ids.shape[1] - 1)
            total += float(causal_lm_loss(logits, ids)) * n
            count += n
    router_logits.clear()
    model.train()
    return total / count


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--init", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--steps", type=int, required=True)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--warmup", type=int, default=0)
    p.add_argument("--schedule", choices=("constant", "cosine"), default="constant")
    p.add_argument("--min-lr-ratio", type=float, default=0.0)
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--beta1", type=float, default=0.9)
    p.add_argument("--beta2", type=float, default=0.999)
    p.add_argument("--eps", type=float, default=1e-8)
    p.add_argument("--clip", type=float, default=0.0)
    p.add_argument("--aux-loss", type=float, default=0.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-shuffle", action="store_true")
    p.add_argument("--eval-fraction", type=float, default=0.0)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    model, config, router_logits = build_model(a.init)
    ids_all = torch.from_numpy(token_data.read(a.data)["input_ids"].copy())
    train, held_out = token_data.split_off(ids_all, a.eval_fraction)
    order = data_order.DataOrder(len(train), a.batch_size, not a.no_shuffle, a.seed)
    batches = [torch.tensor(order.batch(s)) for s in range(a.steps)]  # drawn before the clock starts
    params = list(model.parameters())
    opt = torch.optim.AdamW(params, lr=a.lr, betas=(a.beta1, a.beta2), eps=a.eps, weight_decay=a.weight_decay)
    os.makedirs(a.out, exist_ok=True)
    metrics = open(os.path.join(a.out, "metrics.jsonl"), "w")
    tokens_per_step = a.batch_size * train.shape[1]
    model.train()
    start = time.perf_counter()
    for step in range(a.steps):
        ids = train[batches[step]]
        router_logits.clear()
        logits, _ = model(ids)
        loss = causal_lm_loss(logits, ids)
        total = loss
        aux = torch.zeros(())
        if a.aux_loss > 0:
            aux = a.aux_loss * load_balancing_loss_func(tuple(router_logits), config.num_local_experts,
                                                        config.num_experts_per_tok)
            total = loss + aux
        opt.zero_grad(set_to_none=True)
        total.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(params, a.clip) if a.clip > 0 else torch.norm(
            torch.stack([g.grad.norm() for g in params]))
        lr = learning_rate(a, step)
        for g in opt.param_groups:
            g["lr"] = lr
        opt.step()
        elapsed = time.perf_counter() - start
        balance = expert_balance([r.detach() for r in router_logits], config.num_local_experts, config.num_experts_per_tok)
        metrics.write(json.dumps({"step": step + 1, "loss": round(float(loss), 6), "aux_loss": round(float(aux), 6),
                                  "grad_norm": round(float(grad_norm), 6), "lr": lr,
                                  "tokens_per_s": round((step + 1) * tokens_per_step / elapsed, 1),
                                  "expert_balance": round(balance, 4)}) + "\n")
        metrics.flush()
        if (step + 1) % 10 == 0 or step + 1 == a.steps:
            print(f"peer step {step + 1}/{a.steps} loss {float(loss):.4f} "
                  f"{(step + 1) * tokens_per_step / elapsed:.0f} tok/s", file=sys.stderr, flush=True)
    train_seconds = time.perf_counter() - start
    eval_loss = evaluate(model, router_logits, held_out, a.batch_size) if len(held_out) else None
    metrics.write(json.dumps({"step": a.steps, "eval_loss": eval_loss}) + "\n")
    metrics.close()
    print(json.dumps({"train_seconds": train_seconds, "tokens_per_s": a.steps * tokens_per_step / train_seconds,
                      "eval_loss": eval_loss, "torch": torch.__version__, "threads": torch.get_num_threads(),
                      "blas": openblas_info(), "blas_libraries": blas_libraries(),
                      "train_sequences": len(train), "held_out_sequences": len(held_out)}))


if __name__ == "__main__":
    main()
