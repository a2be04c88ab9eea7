#!/usr/bin/python3
"""Writes a Mixtral checkpoint with seeded random weights, laid out as transformers 5.17's
save_pretrained writes it (config.json + model.safetensors, per-expert w1/w2/w3 names), so the
benchmarks run a model of a real shape without downloading one.

Weights are drawn like transformers' _init_weights: every matrix normal(0, initializer_range), every
RMSNorm weight 1. Tensors are drawn in name order from one numpy PCG64 stream, so a seed gives the
same checkpoint everywhere; f32 normals come straight from Generator.standard_normal(dtype=float32)
(a few seconds for 250M), and bf16 is that rounded to nearest even.

Usage: make_random_checkpoint.py CONFIG [OUTDIR] [--seed N] [--dtype f32|bf16]
Without OUTDIR the checkpoint goes to the cache, $MOE_DATA_DIR/bench/ (default ~/.cache/moesdk), under
a name that changes with the config, seed, dtype and this script, and is reused when it is there.
Prints the checkpoint directory."""
import argparse
import hashlib
import json
import os
import shutil
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_numpy  # noqa: E402

DEFAULT_INITIALIZER_RANGE = 0.02  # MixtralConfig's default


def tensor_shapes(cfg):
    """{name: shape} of every weight, with the names save_pretrained writes for MixtralForCausalLM."""
    d, inter, vocab = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    heads = cfg["num_attention_heads"]
    kv_heads = cfg.get("num_key_value_heads") or heads
    head_dim = cfg.get("head_dim") or d // heads
    shapes = {"model.embed_tokens.weight": (vocab, d), "model.norm.weight": (d,)}
    if not cfg.get("tie_word_embeddings", False):
        shapes["lm_head.weight"] = (vocab, d)
    for layer in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{layer}."
        shapes[p + "input_layernorm.weight"] = (d,)
        shapes[p + "post_attention_layernorm.weight"] = (d,)
        shapes[p + "self_attn.q_proj.weight"] = (heads * head_dim, d)
        shapes[p + "self_attn.k_proj.weight"] = (kv_heads * head_dim, d)
        shapes[p + "self_attn.v_proj.weight"] = (kv_heads * head_dim, d)
        shapes[p + "self_attn.o_proj.weight"] = (d, heads * head_dim)
        shapes[p + "block_sparse_moe.gate.weight"] = (cfg["num_local_experts"], d)
        for e in range(cfg["num_local_experts"]):
            q = f"{p}block_sparse_moe.experts.{e}."
            shapes[q + "w1.weight"] = (inter, d)
            shapes[q + "w2.weight"] = (d, inter)
            shapes[q + "w3.weight"] = (inter, d)
    return shapes


def write_checkpoint(cfg, outdir, seed, dtype):
    std = float(cfg.get("initializer_range", DEFAULT_INITIALIZER_RANGE))
    shapes = tensor_shapes(cfg)
    rng = np.random.Generator(np.random.PCG64(seed))

    def produce(name):
        shape = shapes[name]
        if name.endswith("norm.weight"):
            w = np.ones(shape, dtype=np.float32)
        else:
            w = rng.standard_normal(shape, dtype=np.float32)
            w *= np.float32(std)
        return w if dtype == "f32" else safetensors_numpy.f32_to_bf16_bits(w)

    st_dtype = {"f32": "F32", "bf16": "BF16"}[dtype]
    os.makedirs(outdir, exist_ok=True)
    safetensors_numpy.write(os.path.join(outdir, "model.safetensors"),
                            {n: (st_dtype, s) for n, s in shapes.items()}, produce)
    out_cfg = dict(cfg, initializer_range=std, dtype={"f32": "float32", "bf16": "bfloat16"}[dtype])
    with open(os.path.join(outdir, "config.json"), "w") as f:
        json.dump(out_cfg, f, indent=2)
        f.write("\n")


def cache_dir(config_path, seed, dtype):
    root = os.environ.get("MOE_DATA_DIR") or os.path.expanduser("~/.cache/moesdk")
    h = hashlib.sha256()
    for p in (config_path, os.path.abspath(__file__)):
        with open(p, "rb") as f:
            h.update(f.read())
    stem = os.path.splitext(os.path.basename(config_path))[0]
    return os.path.join(root, "bench", f"{stem}-{h.hexdigest()[:12]}-seed{seed}-{dtype}")


def cached_checkpoint(config_path, seed=0, dtype="f32"):
    """The cached checkpoint directory for this config, made first if it is not there. It is written
    under a temporary name and renamed, so an interrupted run never leaves a half-written one."""
    final = cache_dir(config_path, seed, dtype)
    if not os.path.isdir(final):
        with open(config_path) as f:
            cfg = json.load(f)
        tmp = final + f".tmp{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        write_checkpoint(cfg, tmp, seed, dtype)
        os.rename(tmp, final)
    return final


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("config")
    ap.add_argument("outdir", nargs="?")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dtype", choices=("f32", "bf16"), default="f32")
    a = ap.parse_args()
    if a.outdir:
        with open(a.config) as f:
            write_checkpoint(json.load(f), a.outdir, a.seed, a.dtype)
        print(a.outdir)
    else:
        print(cached_checkpoint(a.config, a.seed, a.dtype))


if __name__ == "__main__":
    main()
