#include "train/functions.h"

#include <cmath>
#include <numeric>
#include <vector>

#include "tensor/backend.h"

namespace moe::ad {
namespace {

// The gradient that reached v, shaped like v.
Tensor grad_of(const Var& v) { return v.grad->view(v.value.shape()); }

// The tensor a weight gradient accumulates into: the trainer's f32 slot, created zeroed if absent.
Tensor* weight_grad(const Var& w) {
  if (!w.grad) return nullptr;
  if (!w.grad->defined()) *w.grad = Tensor::zeros(w.value.backend(), MOE_DTYPE_F32, w.value.shape());
  return w.grad.get();
}

Tensor zeros_like(const Tensor& t) { return Tensor::zeros(t.backend(), MOE_DTYPE_F32, t.shape()); }

}  // namespace

Var linear(Tape* tape, const Var& x, const Var& w) {
  const bool rec = recording(tape, {&x, &w});
  Var y = result(ops::linear(x.value, w.value), rec);
  if (rec) {
    tape->record([x, w, y] {
      Tensor dy = grad_of(y);
      if (x.requires_grad()) {
        Tensor dx = Tensor::empty(x.value.backend(), MOE_DTYPE_F32, x.value.shape());
        ops::gemm(dy, w.value, /*trans_a=*/false, /*trans_b=*/false, dx);
        accumulate(x, dx);
      }
      if (Tensor* dw = weight_grad(w)) ops::gemm(dy, x.value, /*trans_a=*/true, /*trans_b=*/false, *dw, 1.f, 1.f);
    });
  }
  return y;
}

Var add(Tape* tape, const Var& a, const Var& b) {
  const bool rec = recording(tape, {&a, &b});
  Tensor sum = Tensor::empty(a.value.backend(), MOE_DTYPE_F32, a.value.shape());
  ops::add(a.value, b.value, sum);
  Var y = result(sum, rec);
  if (rec) {
    tape->record([a, b, y] {
      Tensor dy = grad_of(y);
      if (a.requires_grad()) accumulate(a, b.requires_grad() ? ops::clone(dy) : dy);
      if (b.requires_grad()) accumulate(b, dy);
    });
  }
  return y;
}

Var linear_residual(Tape* tape, const Var& x, const Var& w, const Var& residual) {
  const bool rec = recording(tape, {&x, &w, &residual});
  if (!rec) {
    Tensor out = residual.value;
    ops::linear_accumulate(x.value, w.value, out);
    return constant(out);
  }
  Tensor out = ops::clone(residual.value);
  ops::linear_accumulate(x.value, w.value, out);
  Var y = result(out, true);
  tape->record([x, w, residual, y] {
    Tensor dy = grad_of(y);
    if (x.requires_grad()) {
      Tensor dx = Tensor::empty(x.value.backend(), MOE_DTYPE_F32, x.value.shape());
      ops::gemm(dy, w.value, false, false, dx);
      accumulate(x, dx);
    }
    if (Tensor* dw = weight_grad(w)) ops::gemm(dy, x.value, true, false, *dw, 1.f, 1.f);
    if (residual.requires_grad()) accumulate(residual, ops::clone(dy));
  });
  return y;
}

Var rmsnorm(Tape* tape, const Var& x, const Var& w, float eps) {
  const bool rec = recording(tape, {&x, &w});
  Var y = result(ops::rmsnorm(x.value, w.value, eps), rec);
  if (rec) {
    tape->record([x, w, y, eps] {
      Tensor dy = grad_of(y);
      Tensor dx = Tensor::empty(x.value.backend(), MOE_DTYPE_F32, x.value.shape());
      ops::rmsnorm_backward(x.value, w.value, dy, eps, dx, weight_grad(w));
      accumulate(x, dx);
    });
  }
  return y;
}

Var gated_act(Tape* tape, const Var& gate_up, int activation) {
  const bool rec = recording(tape, {&gate_up});
  Var y = result(ops::gated_act(gate_up.value, activation), rec);
  if (rec) {
    tape->record([gate_up, y, activation] {
      accumulate(gate_up, ops::gated_act_backward(gate_up.value, grad_of(y), activation));
    });
  }
  return y;
}

Var embedding(Tape* tape, const Tensor& ids, const Var& table) {
  const bool rec = recording(tape, {&table});
  Var y = result(ops::embedding(ids, table.value), rec);
  if (rec) {
    tape->record([ids, table, y] { ops::embedding_backward(ids, grad_of(y), *weight_grad(table)); });
  }
  return y;
}

Var gather_rows(Tape* tape, const Var& x, const Tensor& rows) {
  const bool rec = recording(tape, {&x});
  Var y = result(ops::embedding(rows, x.value), rec);
  if (rec) {
    tape->record([x, rows, y] {
      Tensor dx = zeros_like(x.value);
      ops::embedding_backward(rows, grad_of(y), dx);
      accumulate(x, dx);
    });
  }
  return y;
}

Var rope(Tape* tape, const Var& x, const Tensor& positions, const RopeTables& t, int rot_offset, int rot_dim,
         int layout) {
  const bool rec = recording(tape, {&x});
  if (!rec) {
    Tensor out = x.value;
    ops::rope(out, positions, t.cos, t.sin, rot_offset, rot_dim, layout);
    return constant(out);
  }
  Tensor out = ops::clone(x.value);
  ops::rope(out, positions, t.cos, t.sin, rot_offset, rot_dim, layout);
  Var y = result(out, true);
  tape->record([x, y, positions, t, rot_offset, rot_dim, layout] {
    // A rotation's transpose is the rotation by the opposite angle.
    Tensor dx = ops::clone(grad_of(y));
    ops::rope(dx, positions, t.cos, t.sin_neg, rot_offset, rot_dim, layout);
    accumulate(x, dx);
  });
  return y;
}

Var columns(Tape* tape, const Var& x, int64_t col, int64_t cols) {
  const bool rec = recording(tape, {&x});
  Tensor out = Tensor::empty(x.value.backend(), MOE_DTYPE_F32, {x.value.dim(0), cols});
  ops::copy_columns(out, 0, x.value, col, cols);
  Var y = result(out, rec);
  if (rec) {
    tape->record([x, y, col, cols] {
      Tensor dx = zeros_like(x.value);
      ops::copy_columns(dx, col, grad_of(y), 0, cols);
      accumulate(x, dx);
    });
  }
  return y;
}

Var scaled(Tape* tape, const Var& x, float alpha) {
  const bool rec = recording(tape, {&x});
  Tensor out = ops::clone(x.value);
  ops::scale(out, alpha);
  Var y = result(out, rec);
  if (rec) {
    tape->record([x, y, alpha] {
      Tensor dx = ops::clone(grad_of(y));
      ops::scale(dx, alpha);
      accumulate(x, dx);
    });
  }
  return y;
}

Var concat_heads(Tape* tape, const Var& per_head, const Var& shared) {
  const int64_t t = per_head.value.dim(0), heads = per_head.value.dim(1), n = per_head.value.dim(2);
  const int64_t r = shared.value.dim(1), width = n + r;
  Backend& be = per_head.value.backend();
  Tensor out = Tensor::empty(be, MOE_DTYPE_F32, {t, heads, width});
  Tensor out_by_head = out.view({t * heads, width}), out_by_token = out.view({t, heads * width});
  ops::copy_columns(out_by_head, 0, per_head.value.view({t * heads, n}), 0, n);
  for (int64_t h = 0; h < heads; ++h) ops::copy_columns(out_by_token, h * width + n, shared.value, 0, r);
  const bool rec = recording(tape, {&per_head, &shared});
  Var y = result(out, rec);
  if (rec) {
    tape->record([per_head, shared, y, t, heads, n, r, width] {
      Tensor dy = grad_of(y);
      Backend& be = dy.backend();
      if (per_head.requires_grad()) {
        Tensor d = Tensor::empty(be, MOE_DTYPE_F32, {t * heads, n});
        ops::copy_columns(d, 0, dy.view({t * heads, width}), 0, n);
        accumulate(per_head, d);
      }
      if (shared.requires_grad()) {
        Tensor d = Tensor::zeros(be, MOE_DTYPE_F32, {t, r}), part = Tensor::empty(be, MOE_DTYPE_F32, {t, r});
        Tensor by_token = dy.view({t, heads * width});
        for (int64_t h = 0; h < heads; ++h) {
          ops::copy_columns(part, 0, by_token, h * width + n, r);
          ops::add(d, part, d);
        }
        accumulate(shared, d);
      }
    });
  }
  return y;
}

Var reshape(const Var& x, Shape shape) { return Var{x.value.view(std::move(shape)), x.grad}; }

Var lora_weight(Tape* tape, const Var& w, const Var& a, const Var& b, float scale) {
  const bool stacked = w.value.ndim() == 3;
  const int64_t n = stacked ? w.value.dim(0) : 1, out = w.value.dim(-2), in = w.value.dim(-1), rank = a.value.dim(-2);
  Backend& be = w.value.backend();
  // An f32 copy of w to add the product into (the embedding op converts bf16 rows to f32).
  Tensor merged;
  if (w.value.dtype() == MOE_DTYPE_F32) {
    merged = ops::clone(w.value);
  } else {
    std::vector<int32_t> rows(static_cast<size_t>(n * out));
    std::iota(rows.begin(), rows.end(), 0);
    merged = ops::embedding(Tensor::from_host(be, MOE_DTYPE_I32, {n * out}, rows.data()), w.value.view({n * out, in}))
                 .view(w.value.shape());
  }
  // Slice i of a stack as a 2-D matrix.
  auto part = [n](const Tensor& t, int64_t i, int64_t rows, int64_t cols) {
    return (n == 1 && t.ndim() == 2 ? t : t.slice(i, i + 1)).view({rows, cols});
  };
  for (int64_t i = 0; i < n; ++i) {
    Tensor c = part(merged, i, out, in);
    ops::gemm(part(b.value, i, out, rank), part(a.value, i, rank, in), false, false, c, scale, 1.f);
  }
  const bool rec = recording(tape, {&w, &a, &b});
  Var y = result(merged, rec);
  if (rec) {
    tape->record([w, a, b, y, scale, n, out, in, rank, part] {
      if (!y.grad->defined()) return;  // nothing downstream produced a gradient
      Tensor dy = grad_of(y);
      Tensor* da = weight_grad(a);
      Tensor* db = weight_grad(b);
      for (int64_t i = 0; i < n; ++i) {
        Tensor dyi = part(dy, i, out, in);
        if (da) {
          Tensor dai = part(*da, i, rank, in);
          ops::gemm(part(b.value, i, out, rank), dyi, /*trans_a=*/true, false, dai, scale, 1.f);  // B^T dW'
        }
        if (db) {
          Tensor dbi = part(*db, i, out, rank);
          ops::gemm(dyi, part(a.value, i, rank, in), false, /*trans_b=*/true, dbi, scale, 1.f);  // dW' A^T
        }
      }
      if (w.requires_grad()) accumulate(w, ops::clone(dy));
    });
  }
  return y;
}

Var attention(Tape* tape, const Var& q, const Var& k, const Var& v, const AttentionStep& step, Tensor& k_cache,
              Tensor& v_cache) {
  ops::kv_store(k.value, v.value, step.slot, step.position, k_cache, v_cache);
  const bool rec = recording(tape, {&q, &k, &v});
  Tensor out = Tensor::empty(q.value.backend(), MOE_DTYPE_F32, {q.value.dim(0), q.value.dim(1), v_cache.dim(3)});
  ops::attention(q.value, k_cache, v_cache, step.slot, step.kv_len, step.scale, out);
  Var y = result(out, rec);
  if (rec) {
    tape->record([q, k, v, y, step, k_cache, v_cache] {
      Tensor dq = Tensor::empty(q.value.backend(), MOE_DTYPE_F32, q.value.shape());
      Tensor dk_cache = zeros_like(k_cache), dv_cache = zeros_like(v_cache);
      ops::attention_backward(q.value, k_cache, v_cache, step.slot, step.kv_len, step.scale, y.value, grad_of(y), dq,
                              dk_cache, dv_cache);
      accumulate(q, dq);
      if (k.requires_grad() || v.requires_grad()) {
        Tensor dk = Tensor::empty(k.value.backend(), MOE_DTYPE_F32, k.value.shape());
        Tensor dv = Tensor::empty(v.value.backend(), MOE_DTYPE_F32, v.value.shape());
        ops::kv_load(dk_cache, dv_cache, step.slot, step.position, dk, dv);
        accumulate(k, dk);
        accumulate(v, dv);
      }
    });
  }
  return y;
}

int64_t expert_capacity(float capacity_factor, int64_t tokens, int top_k, int num_experts) {
  // In double, so that exact products (1.25 * 8 * 2 / 4 = 5) are not pushed over an integer by rounding.
  return static_cast<int64_t>(std::ceil(static_cast<double>(capacity_factor) * static_cast<double>(tokens) * top_k /
                                        static_cast<double>(num_experts)));
}

Tensor routed_experts_inference(const Tensor& x, const ops::InputNorm& norm, const Tensor& router,
                                const Tensor* router_bias, const Tensor& gate_up, const Tensor& down,
                                const MoeRouting& r, const Tensor& residual, Tensor* router_logits, Tensor* ids) {
  // Norm, router and dispatch are one op, and the experts with the combination of their outputs another,
  // which a recorded decode step runs as few kernels where the backend has them (ops::route_and_permute,
  // ops::expert_mlp_unpermute).
  const ops::RouterSpec spec{r.sigmoid, router_bias, r.n_group, r.topk_group, r.top_k, r.normalize, r.scaling};
  ops::Dispatch d = ops::route_and_permute(x, norm, router, spec);
  if (router_logits) *router_logits = d.logits;
  if (ids) *ids = d.routing.ids;
  Tensor sum = residual;
  ops::expert_mlp_unpermute(d.permuted.x_sorted, d.permuted.offsets, gate_up, down, r.activation, d.permuted.source,
                            d.routing.weights, true, sum);
  return sum;
}

MoeOutput routed_experts(Tape* tape, const Var& h, const Var& router, const Tensor* router_bias, const Var& gate_up,
                         const Var& down, const MoeRouting& r, const Var& residual) {
  MoeOutput out;
  if (!r.gumbel && r.capacity_factor <= 0 && !recording(tape, {&h, &router, &gate_up, &down, &residual})) {
    Tensor logits, ids;
    out.y = constant(routed_experts_inference(h.value, ops::InputNorm{}, router.value, router_bias, gate_up.value,
                                              down.value, r, residual.value, &logits, &ids));
    out.router_logits = constant(logits);
    out.ids = ids;
    return out;
  }
  out.router_logits = linear(tape, h, router);
  const Tensor& logits = out.router_logits.value;
  // Gumbel-softmax style exploration: experts are chosen from (logits + Gumbel noise) / temperature,
  // and the weights are that softmax's, so gradients reach the logits scaled by 1 / temperature.
  Tensor route_logits = logits;
  if (r.gumbel) {
    route_logits = ops::clone(logits);
    ops::add_gumbel_noise(route_logits, r.noise_seed, r.noise_offset, 1.f);
    ops::scale(route_logits, 1.f / r.temperature);
  }
  ops::Routing routing = r.sigmoid ? ops::route_sigmoid_group_topk(route_logits, router_bias, r.n_group, r.topk_group,
                                                                   r.top_k, r.normalize, r.scaling)
                                   : ops::route_softmax_topk(route_logits, r.top_k, r.normalize);
  out.ids = routing.ids;
  // Capacity: walk the assignments in token order and zero the weight of each one past its expert's
  // capacity. `kept` (1 or 0 per assignment) also masks the router's gradient in the backward pass.
  std::vector<float> kept;
  if (r.capacity_factor > 0) {
    const int64_t tokens = h.value.dim(0), capacity = expert_capacity(r.capacity_factor, tokens, r.top_k, r.num_experts);
    std::vector<int32_t> ids = routing.ids.to_vector<int32_t>();
    std::vector<float> weights = routing.weights.to_vector<float>();
    std::vector<int64_t> taken(static_cast<size_t>(r.num_experts), 0);
    kept.assign(ids.size(), 1.f);
    for (size_t i = 0; i < ids.size(); ++i) {
      if (++taken[static_cast<size_t>(ids[i])] <= capacity) continue;
      kept[i] = 0.f;
      weights[i] = 0.f;
      ++out.dropped;
    }
    if (out.dropped == 0) kept.clear();
    else routing.weights = Tensor::from_host(logits.backend(), MOE_DTYPE_F32, routing.weights.shape(), weights.data());
  }
  ops::Permuted p = ops::moe_permute(h.value, routing.ids, r.num_experts);
  Tensor y_sorted = ops::expert_mlp(p.x_sorted, p.offsets, gate_up.value, down.value, r.activation);

  const bool rec = recording(tape, {&h, &out.router_logits, &gate_up, &down, &residual});
  if (!rec) {
    Tensor sum = residual.value;
    ops::moe_unpermute(y_sorted, p.source, routing.weights, true, sum);
    out.y = constant(sum);
    return out;
  }
  Tensor sum = ops::clone(residual.value);
  ops::moe_unpermute(y_sorted, p.source, routing.weights, true, sum);
  out.y = result(sum, true);
  Var logits_var = out.router_logits;
  tape->record([h, logits_var, gate_up, down, residual, y = out.y, r, p, y_sorted, routing, route_logits, kept] {
    Tensor dy = grad_of(y);
    Backend& be = dy.backend();
    Tensor dy_sorted = Tensor::empty(be, MOE_DTYPE_F32, y_sorted.shape());
    Tensor dweights = Tensor::empty(be, MOE_DTYPE_F32, routing.weights.shape());
    const bool want_weights = logits_var.requires_grad();
    ops::moe_unpermute_backward(y_sorted, p.source, routing.weights, dy, dy_sorted, want_weights ? &dweights : nullptr);
    Tensor dx_sorted;
    if (h.requires_grad()) dx_sorted = Tensor::empty(be, MOE_DTYPE_F32, p.x_sorted.shape());
    ops::expert_mlp_backward(p.x_sorted, p.offsets, gate_up.value, down.value, r.activation, dy_sorted,
                             h.requires_grad() ? &dx_sorted : nullptr, weight_grad(gate_up), weight_grad(down));
    if (h.requires_grad()) {
      // moe_permute copied each token to top_k rows: its gradient is those rows summed.
      std::vector<float> ones(static_cast<size_t>(routing.weights.numel()), 1.f);
      Tensor unit = Tensor::from_host(be, MOE_DTYPE_F32, routing.weights.shape(), ones.data());
      Tensor dh = Tensor::empty(be, MOE_DTYPE_F32, h.value.shape());
      ops::moe_unpermute(dx_sorted, p.source, unit, false, dh);
      accumulate(h, dh);
    }
    if (want_weights) {
      if (!kept.empty()) {
        // A dropped assignment's weight multiplied nothing: no gradient reaches the router through it.
        std::vector<float> d = dweights.to_vector<float>();
        for (size_t i = 0; i < d.size(); ++i)
          if (kept[i] == 0.f) d[i] = 0.f;
        dweights.copy_from_host(d.data(), d.size() * sizeof(float));
      }
      Tensor dlogits = r.sigmoid ? ops::route_sigmoid_topk_backward(route_logits, routing.ids, r.normalize, r.scaling,
                                                                    dweights)
                                 : ops::route_softmax_topk_backward(route_logits, routing.ids, r.normalize, dweights);
      if (r.gumbel) ops::scale(dlogits, 1.f / r.temperature);
      accumulate(logits_var, dlogits);
    }
    if (residual.requires_grad()) accumulate(residual, ops::clone(dy));
  });
  return out;
}

}  // namespace moe::ad
