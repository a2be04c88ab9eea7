"""The PyTorch peer: transformers 5.17's MixtralForCausalLM forward and greedy generate, ported to plain
PyTorch 1.13 (Debian's python3-torch; transformers itself is not installed on the benchmark machines).

Each class and function below follows the one of the same name in transformers 5.17
(models/mixtral/modeling_mixtral.py, masking_utils.py, cache_utils.py, generation/utils.py), doing
the same operations in the same order and dtypes, so its speed is what transformers' own code gets
from this torch. Where transformers offers several implementations it uses the ones that run on
torch 1.13: eager attention (`eager_attention_forward`; sdpa needs torch >= 2.0) and the eager
per-expert loop of MixtralExperts (`experts_implementation="eager"`). Training-only paths (dropout,
router jitter, aux loss) are left out: the peer only runs inference.
"""
import json
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import safetensors_numpy  # noqa: E402


class MixtralConfig:
    """The config.json fields the forward pass reads, with MixtralConfig's defaults."""

    def __init__(self, d):
        self.vocab_size = d.get("vocab_size", 32000)
        self.hidden_size = d.get("hidden_size", 4096)
        self.intermediate_size = d.get("intermediate_size", 14336)
        self.num_hidden_layers = d.get("num_hidden_layers", 32)
        self.num_attention_heads = d.get("num_attention_heads", 32)
        self.num_key_value_heads = d.get("num_key_value_heads") or self.num_attention_heads
        self.head_dim = d.get("head_dim") or self.hidden_size // self.num_attention_heads
        self.rms_norm_eps = d.get("rms_norm_eps", 1e-5)
        self.num_local_experts = d.get("num_local_experts", 8)
        self.num_experts_per_tok = d.get("num_experts_per_tok", 2)
        self.tie_word_embeddings = d.get("tie_word_embeddings", False)
        if d.get("hidden_act", "silu") != "silu":
            raise ValueError(f"hidden_act {d['hidden_act']!r}: the peer implements silu only")
        if d.get("sliding_window") is not None:
            raise ValueError("sliding_window: the peer implements full causal attention only")
        # RotaryEmbeddingConfigMixin: rope_parameters, else the legacy rope_scaling, plus a top-level
        # rope_theta, default 10000.
        rope = dict(d.get("rope_parameters") or d.get("rope_scaling") or {})
        rope.setdefault("rope_type", rope.get("type", "default"))
        rope.setdefault("rope_theta", d.get("rope_theta", 10000.0))
        if rope["rope_type"] != "default":
            raise ValueError(f"rope_type {rope['rope_type']!r}: the peer implements default RoPE only")
        self.rope_theta = float(rope["rope_theta"])


class MixtralExperts(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.num_experts = config.num_local_experts
        self.gate_up_proj = nn.Parameter(
            torch.empty(self.num_experts, 2 * config.intermediate_size, config.hidden_size), requires_grad=False)
        self.down_proj = nn.Parameter(
            torch.empty(self.num_experts, config.hidden_size, config.intermediate_size), requires_grad=False)
        self.act_fn = F.silu

    def forward(self, hidden_states, top_k_index, top_k_weights):
        final_hidden_states = torch.zeros_like(hidden_states)
        with torch.no_grad():
            expert_mask = torch.nn.functional.one_hot(top_k_index, num_classes=self.num_experts)
            expert_mask = expert_mask.permute(2, 1, 0)
            expert_hit = torch.greater(expert_mask.sum(dim=(-1, -2)), 0).nonzero()

        for expert_idx in expert_hit:
            expert_idx = expert_idx[0]
            if expert_idx == self.num_experts:
                continue
            top_k_pos, token_idx = torch.where(expert_mask[expert_idx])
            current_state = hidden_states[token_idx]
            gate, up = nn.functional.linear(current_state, self.gate_up_proj[expert_idx]).chunk(2, dim=-1)
            current_hidden_states = self.act_fn(gate) * up
            current_hidden_states = nn.functional.linear(current_hidden_states, self.down_proj[expert_idx])
            current_hidden_states = current_hidden_states * top_k_weights[token_idx, top_k_pos, None]
            final_hidden_states.index_add_(0, token_idx, current_hidden_states.to(final_hidden_states.dtype))

        return final_hidden_states


class MixtralTopKRouter(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.top_k = config.num_experts_per_tok
        self.hidden_dim = config.hidden_size
        self.weight = nn.Parameter(torch.empty(config.num_local_experts, self.hidden_dim), requires_grad=False)

    def forward(self, hidden_states):
        hidden_states = hidden_states.reshape(-1, self.hidden_dim)
        router_logits = F.linear(hidden_states, self.weight)
        router_probs = torch.nn.functional.softmax(router_logits.float(), dim=-1)
        router_top_value, router_indices = torch.topk(router_probs, self.top_k, dim=-1)
        router_top_value /= router_top_value.sum(dim=-1, keepdim=True)
        return router_logits, router_top_value, router_indices


class MixtralSparseMoeBlock(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.gate = MixtralTopKRouter(config)
        self.experts = MixtralExperts(config)

    def forward(self, hidden_states):
        batch_size, sequence_length, hidden_dim = hidden_states.shape
        hidden_states = hidden_states.view(-1, hidden_states.shape[-1])
        _, top_k_weights, top_k_index = self.gate(hidden_states)
        hidden_states = self.experts(hidden_states, top_k_index, top_k_weights)
        return hidden_states.reshape(batch_size, sequence_length, hidden_dim)


class MixtralRMSNorm(nn.Module):
    def __init__(self, hidden_size, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(hidden_size), requires_grad=False)
        self.variance_epsilon = eps

    def forward(self, hidden_states):
        input_dtype = hidden_states.dtype
        hidden_states = hidden_states.to(torch.float32)
        variance = hidden_states.pow(2).mean(-1, keepdim=True)
        hidden_states = hidden_states * torch.rsqrt(variance + self.variance_epsilon)
        return self.weight * hidden_states.to(input_dtype)


class MixtralRotaryEmbedding(nn.Module):
    def __init__(self, config):
        super().__init__()
        dim = config.head_dim
        inv_freq = 1.0 / (config.rope_theta ** (torch.arange(0, dim, 2, dtype=torch.float) / dim))
        self.register_buffer("inv_freq", inv_freq, persistent=False)
        self.attention_scaling = 1.0

    @torch.no_grad()
    def forward(self, x, position_ids):
        inv_freq_expanded = self.inv_freq[None, :, None].float().expand(position_ids.shape[0], -1, 1)
        position_ids_expanded = position_ids[:, None, :].float()
        freqs = (inv_freq_expanded @ position_ids_expanded).transpose(1, 2)
        emb = torch.cat((freqs, freqs), dim=-1)
        cos = emb.cos() * self.attention_scaling
        sin = emb.sin() * self.attention_scaling
        return cos.to(dtype=x.dtype), sin.to(dtype=x.dtype)


def rotate_half(x):
    x1 = x[..., : x.shape[-1] // 2]
    x2 = x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def apply_rotary_pos_emb(q, k, cos, sin, unsqueeze_dim=1):
    cos = cos.unsqueeze(unsqueeze_dim)
    sin = sin.unsqueeze(unsqueeze_dim)
    q_embed = (q * cos) + (rotate_half(q) * sin)
    k_embed = (k * cos) + (rotate_half(k) * sin)
    return q_embed, k_embed


def repeat_kv(hidden_states, n_rep):
    batch, num_key_value_heads, slen, head_dim = hidden_states.shape
    if n_rep == 1:
        return hidden_states
    hidden_states = hidden_states[:, :, None, :, :].expand(batch, num_key_value_heads, n_rep, slen, head_dim)
    return hidden_states.reshape(batch, num_key_value_heads * n_rep, slen, head_dim)


def eager_attention_forward(module, query, key, value, attention_mask, scaling):
    key_states = repeat_kv(key, module.num_key_value_groups)
    value_states = repeat_kv(value, module.num_key_value_groups)

    attn_weights = torch.matmul(query, key_states.transpose(2, 3)) * scaling
    if attention_mask is not None:
        attn_weights = attn_weights + attention_mask

    attn_weights = nn.functional.softmax(attn_weights, dim=-1, dtype=torch.float32).to(query.dtype)
    attn_output = torch.matmul(attn_weights, value_states)
    attn_output = attn_output.transpose(1, 2).contiguous()
    return attn_output, attn_weights


class MixtralAttention(nn.Module):
    def __init__(self, config, layer_idx):
        super().__init__()
        self.layer_idx = layer_idx
        self.head_dim = config.head_dim
        self.num_key_value_groups = config.num_attention_heads // config.num_key_value_heads
        self.scaling = self.head_dim ** -0.5
        self.q_proj = nn.Linear(config.hidden_size, config.num_attention_heads * self.head_dim, bias=False)
        self.k_proj = nn.Linear(config.hidden_size, config.num_key_value_heads * self.head_dim, bias=False)
        self.v_proj = nn.Linear(config.hidden_size, config.num_key_value_heads * self.head_dim, bias=False)
        self.o_proj = nn.Linear(config.num_attention_heads * self.head_dim, config.hidden_size, bias=False)

    def forward(self, hidden_states, position_embeddings, attention_mask, past_key_values=None):
        input_shape = hidden_states.shape[:-1]
        hidden_shape = (*input_shape, -1, self.head_dim)

        query_states = self.q_proj(hidden_states).view(hidden_shape).transpose(1, 2)
        key_states = self.k_proj(hidden_states).view(hidden_shape).transpose(1, 2)
        value_states = self.v_proj(hidden_states).view(hidden_shape).transpose(1, 2)

        cos, sin = position_embeddings
        query_states, key_states = apply_rotary_pos_emb(query_states, key_states, cos, sin)

        if past_key_values is not None:
            key_states, value_states = past_key_values.update(key_states, value_states, self.layer_idx)

        attn_output, attn_weights = eager_attention_forward(
            self, query_states, key_states, value_states, attention_mask, scaling=self.scaling)

        attn_output = attn_output.reshape(*input_shape, -1).contiguous()
        attn_output = self.o_proj(attn_output)
        return attn_output, attn_weights


class MixtralDecoderLayer(nn.Module):
    def __init__(self, config, layer_idx):
        super().__init__()
        self.self_attn = MixtralAttention(config, layer_idx)
        self.mlp = MixtralSparseMoeBlock(config)
        self.input_layernorm = MixtralRMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.post_attention_layernorm = MixtralRMSNorm(config.hidden_size, eps=config.rms_norm_eps)

    def forward(self, hidden_states, position_embeddings, attention_mask, past_key_values=None):
        residual = hidden_states
        hidden_states = self.input_layernorm(hidden_states)
        hidden_states, _ = self.self_attn(hidden_states, position_embeddings, attention_mask, past_key_values)
        hidden_states = residual + hidden_states
        residual = hidden_states
        hidden_states = self.post_attention_layernorm(hidden_states)
        hidden_states = self.mlp(hidden_states)
        hidden_states = residual + hidden_states
        return hidden_states


class DynamicCache:
    """cache_utils.DynamicCache of DynamicLayers: keys and values grow by torch.cat along the sequence."""

    def __init__(self, num_layers):
        self.keys = [None] * num_layers
        self.values = [None] * num_layers

    def update(self, key_states, value_states, layer_idx):
        if self.keys[layer_idx] is None:
            self.keys[layer_idx] = key_states.new_empty(key_states.shape[:-2] + (0, key_states.shape[-1]))
            self.values[layer_idx] = value_states.new_empty(value_states.shape[:-2] + (0, value_states.shape[-1]))
        self.keys[layer_idx] = torch.cat([self.keys[layer_idx], key_states], dim=-2)
        self.values[layer_idx] = torch.cat([self.values[layer_idx], value_states], dim=-2)
        return self.keys[layer_idx], self.values[layer_idx]

    def get_seq_length(self):
        return 0 if self.keys[0] is None else self.keys[0].shape[-2]


def create_causal_mask(inputs_embeds, attention_mask, past_key_values):
    """masking_utils.create_causal_mask for eager attention: the boolean causal mask (and-ed with the 2-D
    padding mask when given) turned into 0 / finfo(dtype).min, shape [batch, 1, q_length, kv_length]."""
    batch_size, q_length = inputs_embeds.shape[:2]
    q_offset = past_key_values.get_seq_length() if past_key_values is not None else 0
    kv_length = q_offset + q_length
    q_idx = torch.arange(q_length)[:, None] + q_offset
    kv_idx = torch.arange(kv_length)[None, :]
    mask = (kv_idx <= q_idx)[None, None].expand(batch_size, 1, q_length, kv_length)
    if attention_mask is not None:
        mask = mask & attention_mask[:, None, None, :kv_length].bool()
    min_dtype = torch.finfo(inputs_embeds.dtype).min
    return torch.where(mask, torch.tensor(0.0, dtype=inputs_embeds.dtype), min_dtype)


class MixtralModel(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList([MixtralDecoderLayer(config, i) for i in range(config.num_hidden_layers)])
        self.norm = MixtralRMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.rotary_emb = MixtralRotaryEmbedding(config)

    def forward(self, input_ids, attention_mask=None, past_key_values=None, use_cache=False):
        if use_cache and past_key_values is None:
            past_key_values = DynamicCache(self.config.num_hidden_layers)
        inputs_embeds = self.embed_tokens(input_ids)
        past_seen_tokens = past_key_values.get_seq_length() if past_key_values is not None else 0
        position_ids = (torch.arange(inputs_embeds.shape[1]) + past_seen_tokens).unsqueeze(0)
        causal_mask = create_causal_mask(inputs_embeds, attention_mask, past_key_values)

        hidden_states = inputs_embeds
        position_embeddings = self.rotary_emb(hidden_states, position_ids=position_ids)
        for decoder_layer in self.layers:
            hidden_states = decoder_layer(hidden_states, position_embeddings, causal_mask, past_key_values)
        return self.norm(hidden_states), past_key_values


class MixtralForCausalLM(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.model = MixtralModel(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)

    def forward(self, input_ids, attention_mask=None, past_key_values=None, use_cache=False, logits_to_keep=0):
        """Returns (logits, past_key_values). logits_to_keep=n keeps the logits of the last n positions
        (0: all), as transformers' forward does."""
        hidden_states, past_key_values = self.model(input_ids, attention_mask, past_key_values, use_cache)
        logits = self.lm_head(hidden_states[:, slice(-logits_to_keep, None), :])
        return logits, past_key_values


def generate_greedy(model, input_ids, max_new_tokens):
    """GenerationMixin.generate(do_sample=False) without stop tokens: a prefill that computes the last
    position's logits only (logits_to_keep=1), then one token per forward through the DynamicCache,
    the attention mask growing by one each step. Returns the new ids, [batch, max_new_tokens]."""
    attention_mask = torch.ones_like(input_ids)
    past_key_values = None
    next_input = input_ids
    generated = input_ids
    for _ in range(max_new_tokens):
        logits, past_key_values = model(next_input, attention_mask, past_key_values, use_cache=True, logits_to_keep=1)
        next_token_logits = logits[:, -1].to(copy=True, dtype=torch.float32)
        next_tokens = torch.argmax(next_token_logits, dim=-1)
        generated = torch.cat([generated, next_tokens[:, None]], dim=-1)
        attention_mask = torch.cat([attention_mask, attention_mask.new_ones((attention_mask.shape[0], 1))], dim=-1)
        next_input = generated[:, -1:].clone(memory_format=torch.contiguous_format)
    return generated[:, input_ids.shape[1]:]


def _to_torch(st_dtype, array):
    """A tensor sharing the array's memory (bf16 arrives as uint16 bits)."""
    if st_dtype == "BF16":
        return torch.from_numpy(array.view(np.int16)).view(torch.bfloat16)
    return torch.from_numpy(array)


def load_state_dict(directory):
    """Tensors of model.safetensors (or the shards of model.safetensors.index.json) as torch tensors,
    with the checkpoint's per-expert w1/w2/w3 fused into gate_up_proj / down_proj the way transformers'
    conversion mapping loads them (gate_up_proj[e] = cat(w1, w3)); fused checkpoints load as they are."""
    index = os.path.join(directory, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
    else:
        files = ["model.safetensors"]
    raw = {}
    for fn in files:
        for name, (dt, a) in safetensors_numpy.read(os.path.join(directory, fn)).items():
            raw[name] = _to_torch(dt, a)
    sd = {}
    experts = {}
    for name, t in raw.items():
        parts = name.split(".")
        if ".block_sparse_moe.experts." in name:  # model.layers.L.block_sparse_moe.experts.E.wN.weight
            experts.setdefault(int(parts[2]), {})[(int(parts[5]), parts[6])] = t
        else:
            sd[name.replace(".block_sparse_moe.gate.", ".mlp.gate.")] = t
    for layer, ws in experts.items():
        n = 1 + max(e for e, _ in ws)
        p = f"model.layers.{layer}.mlp.experts."
        sd[p + "gate_up_proj"] = torch.stack([torch.cat([ws[(e, "w1")], ws[(e, "w3")]]) for e in range(n)])
        sd[p + "down_proj"] = torch.stack([ws[(e, "w2")] for e in range(n)])
    return sd


def load_model(directory, dtype=torch.float32):
    """MixtralForCausalLM.from_pretrained(directory, dtype=dtype) in eval mode: every weight in dtype
    (bf16 weights mean bf16 activations too), the RoPE inverse frequencies kept in float32 as
    from_pretrained leaves them (a later model.to(bf16) would round them)."""
    with open(os.path.join(directory, "config.json")) as f:
        config = MixtralConfig(json.load(f))
    model = MixtralForCausalLM(config)
    sd = load_state_dict(directory)
    if config.tie_word_embeddings:
        sd["lm_head.weight"] = sd["model.embed_tokens.weight"]
    model.load_state_dict(sd, strict=True)
    inv_freq = model.model.rotary_emb.inv_freq.clone()
    model.to(dtype)
    model.model.rotary_emb.inv_freq = inv_freq
    return model.eval().requires_grad_(False)
