#!/usr/bin/env python3
"""Makes the reference fixtures the SDK's parity tests compare against.

Runs with Hugging Face transformers 5.x on PyTorch (the GPU machine's image has both; this machine has
neither transformers nor network access to PyPI). For each small random-initialised config below it
writes, under OUT/<name>/:
  - the checkpoint exactly as `save_pretrained` writes it (config.json, *.safetensors, sharded where
    the config asks for it),
  - reference.safetensors: the inputs and what transformers computes from them:
      input_ids [T] int64 (a ragged batch, packed), seq_lengths [B] int64,
      logits [T, vocab] f32 (the model in float64, each sequence run alone: no padding anywhere),
      logits_f32 [T, vocab] f32 (the same in float32),
      gen_prompt [P] int64, gen_tokens [32] int64 (greedy `generate`, 32 new tokens, float64 model),
      train_input_ids [2, 12] int64, train_labels [2, 12] int64 (with -100 entries),
      train_loss [] f64 and grad.<param name> f64 (causal-LM loss and gradients, float64 model),
      adamw5.<param name> f32 (weights after 5 torch.optim.AdamW steps on that batch, float64 model),
      adamw5_f32.<param name> f32 (the same 5 steps with the model in float32).
Usage: python3 make_fixtures.py OUT
"""
import json
import os
import sys
import zlib

import torch
import transformers
from safetensors.torch import save_file, load_file

torch.manual_seed(0)

SEQ_LENGTHS = [7, 16, 3, 11]
GEN_PROMPT_LEN = 6
GEN_NEW_TOKENS = 32
ADAMW = dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)

CONFIGS = {
    # Mixtral: GQA (4 query heads, 2 kv heads), 2 MoE layers, 8 experts top-2.
    "mixtral": dict(
        cls="MixtralForCausalLM", cfg="MixtralConfig", shard=None,
        kw=dict(vocab_size=320, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                num_attention_heads=4, num_key_value_heads=2, num_local_experts=8, num_experts_per_tok=2,
                max_position_embeddings=256, rms_norm_eps=1e-5, rope_theta=10000.0,
                tie_word_embeddings=False, initializer_range=0.2, router_aux_loss_coef=0.01)),
    # The same architecture, sharded by save_pretrained (model.safetensors.index.json) and with 3 layers.
    "mixtral_sharded": dict(
        cls="MixtralForCausalLM", cfg="MixtralConfig", shard="100KB",
        kw=dict(vocab_size=300, hidden_size=48, intermediate_size=64, num_hidden_layers=3,
                num_attention_heads=6, num_key_value_heads=3, num_local_experts=8, num_experts_per_tok=3,
                max_position_embeddings=256, rms_norm_eps=1e-6, rope_theta=500.0,
                tie_word_embeddings=False, initializer_range=0.2)),
    # DeepSeek-V3: MLA with q low-rank, interleaved rope, 1 dense layer then 2 MoE layers,
    # 8 routed experts in 4 groups, top-2 groups, top-2 experts, 1 shared expert.
    "deepseek_v3": dict(
        cls="DeepseekV3ForCausalLM", cfg="DeepseekV3Config", shard=None,
        kw=dict(vocab_size=320, hidden_size=64, intermediate_size=128, moe_intermediate_size=32,
                num_hidden_layers=3, first_k_dense_replace=1, num_attention_heads=4, num_key_value_heads=4,
                n_shared_experts=1, n_routed_experts=8, num_experts_per_tok=2, n_group=4, topk_group=2,
                routed_scaling_factor=2.5, norm_topk_prob=True, q_lora_rank=32, kv_lora_rank=16,
                qk_nope_head_dim=16, qk_rope_head_dim=8, v_head_dim=12, rope_interleave=True,
                max_position_embeddings=256, rms_norm_eps=1e-6, rope_theta=10000.0,
                tie_word_embeddings=False, initializer_range=0.2)),
    # DeepSeek-V3 without q low-rank (q_proj), yarn rope scaling with mscale, non-interleaved rope,
    # no top-k normalisation, 16 experts in 8 groups choosing 3 groups and 4 experts.
    "deepseek_v3_yarn": dict(
        cls="DeepseekV3ForCausalLM", cfg="DeepseekV3Config", shard=None,
        kw=dict(vocab_size=288, hidden_size=48, intermediate_size=96, moe_intermediate_size=24,
                num_hidden_layers=3, first_k_dense_replace=1, num_attention_heads=3, num_key_value_heads=3,
                n_shared_experts=2, n_routed_experts=16, num_experts_per_tok=4, n_group=8, topk_group=3,
                routed_scaling_factor=1.5, norm_topk_prob=False, q_lora_rank=None, kv_lora_rank=16,
                qk_nope_head_dim=8, qk_rope_head_dim=8, v_head_dim=16, rope_interleave=False,
                max_position_embeddings=512, rms_norm_eps=1e-6, rope_theta=10000.0,
                rope_scaling=dict(type="yarn", rope_type="yarn", factor=4.0, original_max_position_embeddings=128,
                                  beta_fast=32, beta_slow=1, mscale=1.0, mscale_all_dim=1.0),
                tie_word_embeddings=False, initializer_range=0.2)),
}


def randomise_buffers(model):
    """e_score_correction_bias starts at zero; make it matter (it changes which experts are chosen)."""
    g = torch.Generator().manual_seed(1)
    for name, buf in model.named_buffers():
        if name.endswith("e_score_correction_bias"):
            buf.copy_(torch.randn(buf.shape, generator=g) * 0.3)


def make(name, spec, out_root):
    out = os.path.join(out_root, name)
    os.makedirs(out, exist_ok=True)
    cfg = getattr(transformers, spec["cfg"])(**spec["kw"])
    cfg._attn_implementation = "eager"
    torch.manual_seed(zlib.crc32(name.encode()))
    model = getattr(transformers, spec["cls"])(cfg).float().eval()
    with torch.no_grad():
        randomise_buffers(model)
    kwargs = {"max_shard_size": spec["shard"]} if spec["shard"] else {}
    model.save_pretrained(out, **kwargs)

    ref = {}
    g = torch.Generator().manual_seed(2)
    ids = [torch.randint(0, cfg.vocab_size, (n,), generator=g) for n in SEQ_LENGTHS]
    ref["input_ids"] = torch.cat(ids)
    ref["seq_lengths"] = torch.tensor(SEQ_LENGTHS, dtype=torch.int64)

    # Eager attention and the eager per-expert loop: the plain formulation, and the only one that
    # runs in float64.
    load = dict(attn_implementation="eager", experts_implementation="eager")
    m64 = getattr(transformers, spec["cls"]).from_pretrained(out, dtype=torch.float64, **load).eval()
    m32 = getattr(transformers, spec["cls"]).from_pretrained(out, dtype=torch.float32, **load).eval()
    with torch.no_grad():
        ref["logits"] = torch.cat([m64(x[None]).logits[0] for x in ids]).float()
        ref["logits_f32"] = torch.cat([m32(x[None]).logits[0] for x in ids]).float()

    prompt = torch.randint(0, cfg.vocab_size, (GEN_PROMPT_LEN,), generator=g)
    with torch.no_grad():
        gen = m64.generate(prompt[None], do_sample=False, max_new_tokens=GEN_NEW_TOKENS,
                           min_new_tokens=GEN_NEW_TOKENS, attention_mask=torch.ones(1, GEN_PROMPT_LEN, dtype=torch.long),
                           pad_token_id=0)
    ref["gen_prompt"] = prompt
    ref["gen_tokens"] = gen[0, GEN_PROMPT_LEN:].clone()

    # Training: loss, gradients, and 5 AdamW steps, all in float64.
    tids = torch.randint(0, cfg.vocab_size, (2, 12), generator=g)
    labels = tids.clone()
    labels[0, 3] = -100
    labels[1, 7:9] = -100
    ref["train_input_ids"] = tids
    ref["train_labels"] = labels
    m64.train()
    m64.zero_grad()
    loss = m64(input_ids=tids, labels=labels).loss
    loss.backward()
    ref["train_loss"] = loss.detach().reshape(())
    for pname, p in m64.named_parameters():
        if p.grad is not None:
            ref["grad." + pname] = p.grad.detach().clone()
    opt = torch.optim.AdamW(m64.parameters(), **ADAMW)
    for _ in range(5):
        opt.zero_grad()
        m64(input_ids=tids, labels=labels).loss.backward()
        opt.step()
    for pname, p in m64.named_parameters():
        ref["adamw5." + pname] = p.detach().float().clone()
    # The same 5 steps by transformers in float32: how far float32 arithmetic itself lands from the
    # float64 result (Adam turns ~1e-9 gradients into full-size steps of either sign), the envelope
    # an f32 implementation is held to.
    m32.train()
    opt32 = torch.optim.AdamW(m32.parameters(), **ADAMW)
    for _ in range(5):
        opt32.zero_grad()
        m32(input_ids=tids, labels=labels).loss.backward()
        opt32.step()
    for pname, p in m32.named_parameters():
        ref["adamw5_f32." + pname] = p.detach().clone()

    save_file({k: v.contiguous() for k, v in ref.items()}, os.path.join(out, "reference.safetensors"))
    with open(os.path.join(out, "reference.json"), "w") as f:
        json.dump({"transformers": transformers.__version__, "torch": torch.__version__,
                   "seq_lengths": SEQ_LENGTHS, "gen_new_tokens": GEN_NEW_TOKENS, "adamw": ADAMW,
                   "train_loss": float(loss)}, f, indent=1)
    names = []
    for fn in sorted(os.listdir(out)):
        if fn.endswith(".safetensors") and fn != "reference.safetensors":
            names += [(fn, k, tuple(v.shape)) for k, v in load_file(os.path.join(out, fn)).items()]
    print(f"== {name}: loss {float(loss):.6f}, gen {ref['gen_tokens'].tolist()}")
    for fn, k, s in names:
        print(f"   {fn}: {k} {s}")
    if name == "mixtral":
        write_other_expert_layout(out, out_root + "/mixtral_other_layout")


def write_other_expert_layout(src, dst):
    """The same mixtral weights in the other expert layout than the one save_pretrained wrote:
    per-expert `block_sparse_moe.experts.E.w1/w2/w3` <-> fused 3-D `mlp.experts.gate_up_proj/down_proj`.
    The SDK must load both; the logits are the same, so the reference is copied unchanged."""
    import re
    import shutil
    os.makedirs(dst, exist_ok=True)
    sd = load_file(os.path.join(src, "model.safetensors"))
    out = {}
    fused = any(k.endswith("experts.gate_up_proj") for k in sd)
    if fused:
        for k, v in sd.items():
            m = re.match(r"(model\.layers\.\d+)\.mlp\.experts\.(gate_up_proj|down_proj)$", k)
            if m:
                layer, what = m.groups()
                for e in range(v.shape[0]):
                    base = f"{layer}.block_sparse_moe.experts.{e}"
                    if what == "gate_up_proj":
                        f = v.shape[1] // 2
                        out[f"{base}.w1.weight"] = v[e, :f].clone()
                        out[f"{base}.w3.weight"] = v[e, f:].clone()
                    else:
                        out[f"{base}.w2.weight"] = v[e].clone()
            else:
                out[k.replace(".mlp.gate.", ".block_sparse_moe.gate.")] = v
    else:
        layers = sorted({int(m.group(1)) for k in sd for m in [re.match(r"model\.layers\.(\d+)\.", k)] if m})
        for k, v in sd.items():
            if ".experts." not in k:
                out[k.replace(".block_sparse_moe.gate.", ".mlp.gate.")] = v
        for l in layers:
            p = f"model.layers.{l}.block_sparse_moe.experts"
            n = len({k for k in sd if k.startswith(p) and k.endswith(".w1.weight")})
            out[f"model.layers.{l}.mlp.experts.gate_up_proj"] = torch.stack(
                [torch.cat([sd[f"{p}.{e}.w1.weight"], sd[f"{p}.{e}.w3.weight"]]) for e in range(n)])
            out[f"model.layers.{l}.mlp.experts.down_proj"] = torch.stack([sd[f"{p}.{e}.w2.weight"] for e in range(n)])
    save_file({k: v.contiguous() for k, v in out.items()}, os.path.join(dst, "model.safetensors"), metadata={"format": "pt"})
    for fn in ("config.json", "reference.safetensors", "reference.json"):
        shutil.copy(os.path.join(src, fn), os.path.join(dst, fn))
    print(f"== mixtral_other_layout ({'per-expert' if fused else 'fused'}): {len(out)} tensors")


def main():
    out_root = sys.argv[1]
    print("transformers", transformers.__version__, "torch", torch.__version__)
    for name, spec in CONFIGS.items():
        try:
            make(name, spec, out_root)
        except Exception as e:  # keep going: one failure must not cost the other fixtures
            import traceback
            traceback.print_exc()
            print(f"!! {name} failed: {e}")


if __name__ == "__main__":
    main()
