#include "tensor/ops.h"

#include "base/dtype.h"
#include "base/error.h"
#include "tensor/backend.h"

namespace moe::ops {
namespace {

[[noreturn]] void bad(const char* op, const std::string& what) {
  fail(MOE_ERR_INTERNAL, std::string(op) + ": " + what);
}

void expect(bool ok, const char* op, const std::string& what) {
  if (!ok) bad(op, what);
}

void expect_float(const Tensor& t, const char* op, const char* name) {
  expect(t.dtype() == MOE_DTYPE_F32 || t.dtype() == MOE_DTYPE_BF16, op,
         std::string(name) + " must be f32 or bf16, is " + dtype_name(t.dtype()));
}

void expect_dtype(const Tensor& t, moe_dtype dtype, const char* op, const char* name) {
  expect(t.dtype() == dtype, op,
         std::string(name) + " must be " + dtype_name(dtype) + ", is " + dtype_name(t.dtype()));
}

void expect_ndim(const Tensor& t, int ndim, const char* op, const char* name) {
  expect(t.ndim() == ndim, op,
         std::string(name) + " must have " + std::to_string(ndim) + " dimensions, has shape " + shape_string(t.shape()));
}

void expect_same_backend(const Tensor& a, const Tensor& b, const char* op) {
  expect(&a.backend() == &b.backend(), op, "tensors live on different backends");
}

// The sigmoid router's groups and bias for `experts` experts; `on` is a tensor of the op (same backend).
void expect_sigmoid_groups(const char* op, const Tensor& on, int64_t experts, const Tensor* bias, int n_group,
                           int topk_group, int top_k) {
  expect(n_group >= 1 && experts % n_group == 0 && topk_group >= 1 && topk_group <= n_group, op,
         "groups do not divide the experts");
  expect(top_k >= 1 && top_k <= topk_group * (experts / n_group), op, "top_k larger than the experts in chosen groups");
  if (bias) {
    expect_dtype(*bias, MOE_DTYPE_F32, op, "bias");
    expect(bias->numel() == experts, op, "bias must have one entry per expert");
    expect_same_backend(on, *bias, op);
  }
}

}  // namespace

void gemm(const Tensor& a, const Tensor& b, bool trans_a, bool trans_b, Tensor& c, float alpha, float beta) {
  const char* op = "gemm";
  expect_ndim(a, 2, op, "a");
  expect_ndim(b, 2, op, "b");
  expect_ndim(c, 2, op, "c");
  expect_float(a, op, "a");
  expect_float(b, op, "b");
  expect_float(c, op, "c");
  expect_same_backend(a, b, op);
  expect_same_backend(a, c, op);
  const int64_t m = trans_a ? a.dim(1) : a.dim(0), k = trans_a ? a.dim(0) : a.dim(1);
  const int64_t n = trans_b ? b.dim(0) : b.dim(1);
  expect((trans_b ? b.dim(1) : b.dim(0)) == k && c.dim(0) == m && c.dim(1) == n, op,
         "shapes a " + shape_string(a.shape()) + (trans_a ? "^T" : "") + ", b " + shape_string(b.shape()) +
             (trans_b ? "^T" : "") + ", c " + shape_string(c.shape()) + " do not agree");
  if (m == 0 || n == 0) return;
  Backend& be = a.backend();
  be.check(be.ops().gemm(be.handle(), trans_a ? 1 : 0, trans_b ? 1 : 0, m, n, k, alpha, a.data(), a.dtype(), a.dim(1),
                         b.data(), b.dtype(), b.dim(1), beta, c.data(), c.dtype(), n),
           op);
}

void gemm_per_head(int64_t heads, int64_t m, int64_t n, int64_t k, const HeadBlocks& a, const HeadBlocks& b,
                   bool trans_b, const HeadBlocks& c) {
  const char* op = "gemm";
  expect_float(*a.t, op, "a");
  expect_float(*b.t, op, "b");
  expect_dtype(*c.t, MOE_DTYPE_F32, op, "c");
  expect_same_backend(*a.t, *b.t, op);
  expect_same_backend(*a.t, *c.t, op);
  // Every block must lie inside its tensor: the last head's last row ends at
  // offset + (heads-1)*step + (rows-1)*ld + cols.
  auto inside = [&](const HeadBlocks& x, int64_t rows, int64_t cols, const char* name) {
    expect(x.offset >= 0 && x.step >= 0 && x.ld >= cols &&
               (heads == 0 || rows == 0 || x.offset + (heads - 1) * x.step + (rows - 1) * x.ld + cols <= x.t->numel()),
           op, std::string(name) + "'s per-head blocks run past its " + std::to_string(x.t->numel()) + " elements");
  };
  inside(a, m, k, "a");
  inside(b, trans_b ? n : k, trans_b ? k : n, "b");
  inside(c, m, n, "c");
  if (m == 0 || n == 0) return;
  Backend& be = a.t->backend();
  auto at = [](const HeadBlocks& x, int64_t h) {
    return static_cast<const char*>(x.t->data()) + (x.offset + h * x.step) * static_cast<int64_t>(dtype_size(x.t->dtype()));
  };
  for (int64_t h = 0; h < heads; ++h)
    be.check(be.ops().gemm(be.handle(), 0, trans_b ? 1 : 0, m, n, k, 1.f, at(a, h), a.t->dtype(), a.ld, at(b, h),
                           b.t->dtype(), b.ld, 0.f, const_cast<char*>(at(c, h)), c.t->dtype(), c.ld),
             op);
}

Tensor linear(const Tensor& x, const Tensor& w) {
  Tensor y = Tensor::empty(x.backend(), MOE_DTYPE_F32, {x.dim(0), w.dim(0)});
  gemm(x, w, false, true, y);
  return y;
}

void linear_accumulate(const Tensor& x, const Tensor& w, Tensor& y) { gemm(x, w, false, true, y, 1.f, 1.f); }

void rmsnorm(const Tensor& x, const Tensor& weight, float eps, Tensor& y) {
  const char* op = "rmsnorm";
  expect_dtype(x, MOE_DTYPE_F32, op, "x");
  expect_dtype(y, MOE_DTYPE_F32, op, "y");
  expect_float(weight, op, "weight");
  expect_ndim(weight, 1, op, "weight");
  expect(x.ndim() >= 1 && x.dim(-1) == weight.dim(0) && x.numel() == y.numel(), op,
         "x " + shape_string(x.shape()) + ", weight " + shape_string(weight.shape()) + ", y " + shape_string(y.shape()));
  Backend& be = x.backend();
  moe_tensor xr = x.ref(), wr = weight.ref(), yr = y.ref();
  be.check(be.ops().rmsnorm(be.handle(), &xr, &wr, eps, &yr), op);
}

Tensor rmsnorm(const Tensor& x, const Tensor& weight, float eps) {
  Tensor y = Tensor::empty(x.backend(), MOE_DTYPE_F32, x.shape());
  rmsnorm(x, weight, eps, y);
  return y;
}

Tensor rmsnorm_linear(const Tensor& x, const Tensor& norm_weight, float eps, const Tensor& w) {
  const char* op = "rmsnorm_linear";
  expect_dtype(x, MOE_DTYPE_F32, op, "x");
  expect_ndim(x, 2, op, "x");
  expect_float(norm_weight, op, "norm_weight");
  expect_ndim(norm_weight, 1, op, "norm_weight");
  expect_float(w, op, "w");
  expect_ndim(w, 2, op, "w");
  expect(norm_weight.dim(0) == x.dim(1) && w.dim(1) == x.dim(1), op,
         "x " + shape_string(x.shape()) + ", norm_weight " + shape_string(norm_weight.shape()) + " and w " +
             shape_string(w.shape()) + " do not agree (norm_weight [dim], w [n, dim] for x [rows, dim])");
  expect_same_backend(x, norm_weight, op);
  expect_same_backend(x, w, op);
  Backend& be = x.backend();
  if (!be.has_rmsnorm_linear()) return linear(rmsnorm(x, norm_weight, eps), w);
  Tensor h = Tensor::empty(be, MOE_DTYPE_F32, x.shape());
  Tensor y = Tensor::empty(be, MOE_DTYPE_F32, {x.dim(0), w.dim(0)});
  moe_tensor xr = x.ref(), nr = norm_weight.ref(), wr = w.ref(), hr = h.ref(), yr = y.ref();
  be.check(be.ops().rmsnorm_linear(be.handle(), &xr, &nr, eps, &wr, &hr, &yr), op);
  return y;
}

namespace {

// rope's checks of x (named `name`), for it and for rope_kv_store.
void expect_rope(const char* op, const Tensor& x, const char* name, const Tensor& positions, const Tensor& cos_table,
                 const Tensor& sin_table, int rot_offset, int rot_dim) {
  expect_dtype(x, MOE_DTYPE_F32, op, name);
  expect_ndim(x, 3, op, name);
  expect_dtype(positions, MOE_DTYPE_I32, op, "positions");
  expect(positions.numel() == x.dim(0), op, "positions must have one entry per token");
  expect(rot_dim > 0 && rot_dim % 2 == 0 && rot_offset >= 0 && rot_offset + rot_dim <= x.dim(2), op,
         "rotary dims [" + std::to_string(rot_offset) + ", +" + std::to_string(rot_dim) + ") outside head dim " +
             std::to_string(x.dim(2)));
  expect(cos_table.ndim() == 2 && cos_table.dim(1) == rot_dim / 2 && sin_table.shape() == cos_table.shape(), op,
         "cos/sin tables must be [positions, rot_dim/2]");
}

// kv_store's checks, for it and for rope_kv_store.
void expect_kv_store(const char* op, const Tensor& k, const Tensor& v, const Tensor& slot, const Tensor& position,
                     const Tensor& k_cache, const Tensor& v_cache) {
  expect_ndim(k, 3, op, "k");
  expect_ndim(v, 3, op, "v");
  expect_ndim(k_cache, 4, op, "k_cache");
  expect_ndim(v_cache, 4, op, "v_cache");
  expect(k.dim(0) == v.dim(0) && slot.numel() == k.dim(0) && position.numel() == k.dim(0) &&
             k.dim(1) == k_cache.dim(1) && k.dim(2) == k_cache.dim(3) && v.dim(1) == v_cache.dim(1) &&
             v.dim(2) == v_cache.dim(3) && k_cache.dim(0) == v_cache.dim(0) && k_cache.dim(2) == v_cache.dim(2),
         op, "k " + shape_string(k.shape()) + ", v " + shape_string(v.shape()) + ", caches " +
                 shape_string(k_cache.shape()) + ", " + shape_string(v_cache.shape()) + " do not agree");
}

}  // namespace

void rope(Tensor& x, const Tensor& positions, const Tensor& cos_table, const Tensor& sin_table, int rot_offset,
          int rot_dim, int layout) {
  const char* op = "rope";
  expect_rope(op, x, "x", positions, cos_table, sin_table, rot_offset, rot_dim);
  Backend& be = x.backend();
  moe_tensor xr = x.ref(), pr = positions.ref(), cr = cos_table.ref(), sr = sin_table.ref();
  be.check(be.ops().rope(be.handle(), &xr, &pr, &cr, &sr, rot_offset, rot_dim, layout), op);
}

Tensor gated_act(const Tensor& gate_up, int activation) {
  const char* op = "gated_act";
  expect_dtype(gate_up, MOE_DTYPE_F32, op, "x");
  expect_ndim(gate_up, 2, op, "x");
  expect(gate_up.dim(1) % 2 == 0, op, "x must have an even width");
  Tensor y = Tensor::empty(gate_up.backend(), MOE_DTYPE_F32, {gate_up.dim(0), gate_up.dim(1) / 2});
  Backend& be = gate_up.backend();
  moe_tensor xr = gate_up.ref(), yr = y.ref();
  be.check(be.ops().gated_act(be.handle(), &xr, activation, &yr), op);
  return y;
}

void add(const Tensor& a, const Tensor& b, Tensor& y) {
  const char* op = "add";
  expect(a.numel() == b.numel() && a.numel() == y.numel(), op, "element counts differ");
  expect_dtype(a, MOE_DTYPE_F32, op, "a");
  expect_dtype(b, MOE_DTYPE_F32, op, "b");
  expect_dtype(y, MOE_DTYPE_F32, op, "y");
  Backend& be = a.backend();
  moe_tensor ar = a.ref(), br = b.ref(), yr = y.ref();
  be.check(be.ops().add(be.handle(), &ar, &br, &yr), op);
}

Tensor embedding(const Tensor& ids, const Tensor& table) {
  const char* op = "embedding";
  expect_dtype(ids, MOE_DTYPE_I32, op, "ids");
  expect_float(table, op, "table");
  expect_ndim(table, 2, op, "table");
  Tensor out = Tensor::empty(ids.backend(), MOE_DTYPE_F32, {ids.numel(), table.dim(1)});
  Backend& be = ids.backend();
  moe_tensor ir = ids.ref(), tr = table.ref(), orf = out.ref();
  be.check(be.ops().embedding(be.handle(), &ir, &tr, &orf), op);
  return out;
}

void copy_columns(Tensor& dst, int64_t dst_col, const Tensor& src, int64_t src_col, int64_t cols) {
  const char* op = "copy_2d";
  expect_dtype(dst, MOE_DTYPE_F32, op, "dst");
  expect_dtype(src, MOE_DTYPE_F32, op, "src");
  expect_ndim(dst, 2, op, "dst");
  expect_ndim(src, 2, op, "src");
  expect(dst.dim(0) == src.dim(0) && dst_col >= 0 && src_col >= 0 && cols >= 0 && dst_col + cols <= dst.dim(1) &&
             src_col + cols <= src.dim(1),
         op, "columns out of range");
  if (cols == 0 || dst.dim(0) == 0) return;
  Backend& be = dst.backend();
  be.check(be.ops().copy_2d(be.handle(), static_cast<float*>(dst.data()) + dst_col, dst.dim(1),
                            static_cast<const float*>(src.data()) + src_col, src.dim(1), dst.dim(0), cols),
           op);
}

Routing route_softmax_topk(const Tensor& logits, int top_k, bool normalize) {
  const char* op = "route_softmax_topk";
  expect_dtype(logits, MOE_DTYPE_F32, op, "logits");
  expect_ndim(logits, 2, op, "logits");
  expect(top_k >= 1 && top_k <= logits.dim(1), op, "top_k out of range");
  Backend& be = logits.backend();
  Routing r{Tensor::empty(be, MOE_DTYPE_I32, {logits.dim(0), top_k}),
            Tensor::empty(be, MOE_DTYPE_F32, {logits.dim(0), top_k})};
  moe_tensor lr = logits.ref(), ir = r.ids.ref(), wr = r.weights.ref();
  be.check(be.ops().route_softmax_topk(be.handle(), &lr, top_k, normalize ? 1 : 0, &ir, &wr), op);
  return r;
}

Routing route_sigmoid_group_topk(const Tensor& logits, const Tensor* bias, int n_group, int topk_group, int top_k,
                                 bool normalize, float scaling) {
  const char* op = "route_sigmoid_group_topk";
  expect_dtype(logits, MOE_DTYPE_F32, op, "logits");
  expect_ndim(logits, 2, op, "logits");
  expect_sigmoid_groups(op, logits, logits.dim(1), bias, n_group, topk_group, top_k);
  Backend& be = logits.backend();
  Routing r{Tensor::empty(be, MOE_DTYPE_I32, {logits.dim(0), top_k}),
            Tensor::empty(be, MOE_DTYPE_F32, {logits.dim(0), top_k})};
  moe_tensor lr = logits.ref(), ir = r.ids.ref(), wr = r.weights.ref();
  moe_tensor br = bias ? bias->ref() : moe_tensor{};
  be.check(be.ops().route_sigmoid_group_topk(be.handle(), &lr, bias ? &br : nullptr, n_group, topk_group, top_k,
                                             normalize ? 1 : 0, scaling, &ir, &wr),
           op);
  return r;
}

Permuted moe_permute(const Tensor& x, const Tensor& ids, int num_experts) {
  const char* op = "moe_permute";
  expect_dtype(x, MOE_DTYPE_F32, op, "x");
  expect_ndim(x, 2, op, "x");
  expect_dtype(ids, MOE_DTYPE_I32, op, "ids");
  expect_ndim(ids, 2, op, "ids");
  expect(ids.dim(0) == x.dim(0), op, "ids must have one row per token");
  Backend& be = x.backend();
  int64_t rows = ids.numel();
  Permuted p{Tensor::empty(be, MOE_DTYPE_F32, {rows, x.dim(1)}), Tensor::empty(be, MOE_DTYPE_I64, {num_experts + 1}),
             Tensor::empty(be, MOE_DTYPE_I32, {rows})};
  moe_tensor xr = x.ref(), ir = ids.ref(), sr = p.x_sorted.ref(), orf = p.offsets.ref(), srcr = p.source.ref();
  be.check(be.ops().moe_permute(be.handle(), &xr, &ir, num_experts, &sr, &orf, &srcr), op);
  return p;
}

Dispatch route_and_permute(const Tensor& x, const InputNorm& norm, const Tensor& router, const RouterSpec& spec) {
  const char* op = "route_and_permute";
  expect_dtype(x, MOE_DTYPE_F32, op, "x");
  expect_ndim(x, 2, op, "x");
  expect_float(router, op, "router");
  expect_ndim(router, 2, op, "router");
  expect(router.dim(1) == x.dim(1), op,
         "router " + shape_string(router.shape()) + " must be [experts, dim] for x " + shape_string(x.shape()));
  expect_same_backend(x, router, op);
  if (norm.weight) {
    expect_float(*norm.weight, op, "norm weight");
    expect(norm.weight->ndim() == 1 && norm.weight->dim(0) == x.dim(1), op,
           "norm weight " + shape_string(norm.weight->shape()) + " must be [dim] for x " + shape_string(x.shape()));
    expect_same_backend(x, *norm.weight, op);
  }
  expect(spec.sigmoid || !spec.bias, op, "a bias is for the sigmoid router only");
  Backend& be = x.backend();
  if (!be.has_route_and_permute()) {
    const Tensor h = norm.weight ? rmsnorm(x, *norm.weight, norm.eps) : x;
    Dispatch d;
    d.logits = linear(h, router);
    d.routing = spec.sigmoid ? route_sigmoid_group_topk(d.logits, spec.bias, spec.n_group, spec.topk_group, spec.top_k,
                                                        spec.normalize, spec.scaling)
                             : route_softmax_topk(d.logits, spec.top_k, spec.normalize);
    d.permuted = moe_permute(h, d.routing.ids, static_cast<int>(router.dim(0)));
    return d;
  }
  // The checks of the ops, so the backend sees consistent arguments.
  const int64_t tokens = x.dim(0), experts = router.dim(0), rows = tokens * spec.top_k;
  expect(spec.top_k >= 1 && spec.top_k <= experts, op, "top_k out of range");
  if (spec.sigmoid) expect_sigmoid_groups(op, x, experts, spec.bias, spec.n_group, spec.topk_group, spec.top_k);
  Tensor h = norm.weight ? Tensor::empty(be, MOE_DTYPE_F32, x.shape()) : Tensor();
  Dispatch d;
  d.logits = Tensor::empty(be, MOE_DTYPE_F32, {tokens, experts});
  d.routing = {Tensor::empty(be, MOE_DTYPE_I32, {tokens, spec.top_k}), Tensor::empty(be, MOE_DTYPE_F32, {tokens, spec.top_k})};
  d.permuted = {Tensor::empty(be, MOE_DTYPE_F32, {rows, x.dim(1)}), Tensor::empty(be, MOE_DTYPE_I64, {experts + 1}),
                Tensor::empty(be, MOE_DTYPE_I32, {rows})};
  moe_tensor xr = x.ref(), rr = router.ref(), lr = d.logits.ref(), ir = d.routing.ids.ref(),
             wr = d.routing.weights.ref(), sorted = d.permuted.x_sorted.ref(), orf = d.permuted.offsets.ref(),
             sr = d.permuted.source.ref();
  moe_tensor br = spec.bias ? spec.bias->ref() : moe_tensor{};
  moe_tensor nr = norm.weight ? norm.weight->ref() : moe_tensor{}, hr = norm.weight ? h.ref() : moe_tensor{};
  be.check(
      be.ops().route_and_permute(be.handle(), &xr, norm.weight ? &nr : nullptr, norm.eps, norm.weight ? &hr : nullptr,
                                 &rr, spec.sigmoid ? 1 : 0, spec.bias ? &br : nullptr, spec.n_group, spec.topk_group,
                                 spec.top_k, spec.normalize ? 1 : 0, spec.scaling, &lr, &ir, &wr, &sorted, &orf, &sr),
      op);
  return d;
}

namespace {

// The checks of expert_mlp's arguments, for it and for expert_mlp_unpermute.
void expect_experts(const char* op, const Tensor& x_sorted, const Tensor& offsets, const Tensor& gate_up,
                    const Tensor& down) {
  expect_dtype(x_sorted, MOE_DTYPE_F32, op, "x");
  expect_ndim(gate_up, 3, op, "gate_up");
  expect_ndim(down, 3, op, "down");
  expect_float(gate_up, op, "gate_up");
  expect(down.dtype() == gate_up.dtype(), op, "gate_up and down must have the same dtype");
  int64_t e = gate_up.dim(0), f2 = gate_up.dim(1), d = gate_up.dim(2);
  expect(f2 % 2 == 0 && down.dim(0) == e && down.dim(1) == d && down.dim(2) == f2 / 2 && x_sorted.dim(1) == d &&
             offsets.numel() == e + 1,
         op, "gate_up " + shape_string(gate_up.shape()) + ", down " + shape_string(down.shape()) + ", x " +
                 shape_string(x_sorted.shape()) + " do not agree");
}

}  // namespace

Tensor expert_mlp(const Tensor& x_sorted, const Tensor& offsets, const Tensor& gate_up, const Tensor& down,
                  int activation) {
  const char* op = "expert_mlp";
  expect_experts(op, x_sorted, offsets, gate_up, down);
  Backend& be = x_sorted.backend();
  Tensor y = Tensor::empty(be, MOE_DTYPE_F32, x_sorted.shape());
  moe_tensor xr = x_sorted.ref(), orf = offsets.ref(), gr = gate_up.ref(), dr = down.ref(), yr = y.ref();
  be.check(be.ops().expert_mlp(be.handle(), &xr, &orf, &gr, &dr, activation, &yr), op);
  return y;
}

void moe_unpermute(const Tensor& y_sorted, const Tensor& source, const Tensor& weights, bool accumulate, Tensor& out) {
  const char* op = "moe_unpermute";
  expect(y_sorted.dim(0) == source.numel() && source.numel() == weights.numel() && weights.dim(0) == out.dim(0) &&
             y_sorted.dim(1) == out.dim(1),
         op, "shapes do not agree");
  Backend& be = out.backend();
  moe_tensor yr = y_sorted.ref(), sr = source.ref(), wr = weights.ref(), orf = out.ref();
  be.check(be.ops().moe_unpermute(be.handle(), &yr, &sr, &wr, accumulate ? 1 : 0, &orf), op);
}

void expert_mlp_unpermute(const Tensor& x_sorted, const Tensor& offsets, const Tensor& gate_up, const Tensor& down,
                          int activation, const Tensor& source, const Tensor& weights, bool accumulate, Tensor& out) {
  const char* op = "expert_mlp_unpermute";
  Backend& be = x_sorted.backend();
  if (!be.has_expert_mlp_unpermute()) {
    moe_unpermute(expert_mlp(x_sorted, offsets, gate_up, down, activation), source, weights, accumulate, out);
    return;
  }
  expect_experts(op, x_sorted, offsets, gate_up, down);
  expect(x_sorted.dim(0) == source.numel() && source.numel() == weights.numel() && weights.dim(0) == out.dim(0) &&
             x_sorted.dim(1) == out.dim(1),
         op,
         "x " + shape_string(x_sorted.shape()) + ", source " + shape_string(source.shape()) + ", weights " +
             shape_string(weights.shape()) + " and out " + shape_string(out.shape()) + " do not agree");
  Tensor y = Tensor::empty(be, MOE_DTYPE_F32, x_sorted.shape());
  moe_tensor xr = x_sorted.ref(), orf = offsets.ref(), gr = gate_up.ref(), dr = down.ref(), sr = source.ref(),
             wr = weights.ref(), yr = y.ref(), outr = out.ref();
  be.check(be.ops().expert_mlp_unpermute(be.handle(), &xr, &orf, &gr, &dr, activation, &sr, &wr, accumulate ? 1 : 0,
                                         &yr, &outr),
           op);
}

void kv_store(const Tensor& k, const Tensor& v, const Tensor& slot, const Tensor& position, Tensor& k_cache,
              Tensor& v_cache) {
  const char* op = "kv_store";
  expect_kv_store(op, k, v, slot, position, k_cache, v_cache);
  Backend& be = k.backend();
  moe_tensor kr = k.ref(), vr = v.ref(), sr = slot.ref(), pr = position.ref(), kc = k_cache.ref(), vc = v_cache.ref();
  be.check(be.ops().kv_store(be.handle(), &kr, &vr, &sr, &pr, &kc, &vc), op);
}

void attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache, const Tensor& slot, const Tensor& kv_len,
               float scale, Tensor& out) {
  const char* op = "attention";
  expect_ndim(q, 3, op, "q");
  expect_ndim(out, 3, op, "out");
  expect(q.dim(2) == k_cache.dim(3) && q.dim(1) % k_cache.dim(1) == 0 && out.dim(0) == q.dim(0) &&
             out.dim(1) == q.dim(1) && out.dim(2) == v_cache.dim(3) && slot.numel() == q.dim(0) &&
             kv_len.numel() == q.dim(0),
         op, "q " + shape_string(q.shape()) + ", caches " + shape_string(k_cache.shape()) + ", " +
                 shape_string(v_cache.shape()) + ", out " + shape_string(out.shape()) + " do not agree");
  Backend& be = q.backend();
  moe_tensor qr = q.ref(), kc = k_cache.ref(), vc = v_cache.ref(), sr = slot.ref(), lr = kv_len.ref(), orf = out.ref();
  be.check(be.ops().attention(be.handle(), &qr, &kc, &vc, &sr, &lr, scale, &orf), op);
}

void rope_kv_store(Tensor& q, Tensor& k, const Tensor& v, const Tensor& positions, const RopeSpec& rope,
                   const Tensor& slot, Tensor& k_cache, Tensor& v_cache) {
  const char* op = "rope_kv_store";
  Backend& be = q.backend();
  if (!be.has_rope_kv_store()) {
    ops::rope(q, positions, *rope.cos_table, *rope.sin_table, rope.rot_offset, rope.rot_dim, rope.layout);
    ops::rope(k, positions, *rope.cos_table, *rope.sin_table, rope.rot_offset, rope.rot_dim, rope.layout);
    kv_store(k, v, slot, positions, k_cache, v_cache);
    return;
  }
  expect_rope(op, q, "q", positions, *rope.cos_table, *rope.sin_table, rope.rot_offset, rope.rot_dim);
  expect(k.ndim() == 3 && k.dim(2) == q.dim(2), op,
         "q " + shape_string(q.shape()) + " and k " + shape_string(k.shape()) + " must have one head dim");
  expect_rope(op, k, "k", positions, *rope.cos_table, *rope.sin_table, rope.rot_offset, rope.rot_dim);
  expect_kv_store(op, k, v, slot, positions, k_cache, v_cache);
  moe_tensor qr = q.ref(), kr = k.ref(), vr = v.ref(), pr = positions.ref(), cr = rope.cos_table->ref(),
             sr = rope.sin_table->ref(), slr = slot.ref(), kc = k_cache.ref(), vc = v_cache.ref();
  be.check(be.ops().rope_kv_store(be.handle(), &qr, &kr, &vr, &pr, &cr, &sr, rope.rot_offset, rope.rot_dim,
                                  rope.layout, &slr, &kc, &vc),
           op);
}

}  // namespace moe::ops

// ---- training ----
namespace moe::ops {
namespace {

// The op pointer, or MOE_ERR_UNSUPPORTED naming the backend and op when its table lacks it.
template <typename Fn>
Fn training_op(const Backend& be, Fn op, const char* name) {
  if (!op) fail(MOE_ERR_UNSUPPORTED, "backend '" + be.name() + "' does not implement " + name + " (needed for training)");
  return op;
}

moe_tensor ref_or_empty(const Tensor* t) { return t ? t->ref() : moe_tensor{}; }

}  // namespace

void rmsnorm_backward(const Tensor& x, const Tensor& weight, const Tensor& dy, float eps, Tensor& dx, Tensor* dweight) {
  const char* op = "rmsnorm_backward";
  expect(x.shape() == dy.shape() && dx.numel() == x.numel() && x.dim(-1) == weight.dim(0), op, "shapes do not agree");
  if (dweight) expect(dweight->numel() == weight.numel() && dweight->dtype() == MOE_DTYPE_F32, op, "dweight");
  Backend& be = x.backend();
  moe_tensor xr = x.ref(), wr = weight.ref(), dyr = dy.ref(), dxr = dx.ref(), dwr = ref_or_empty(dweight);
  be.check(training_op(be, be.ops().rmsnorm_backward, op)(be.handle(), &xr, &wr, &dyr, eps, &dxr, dweight ? &dwr : nullptr),
           op);
}

Tensor gated_act_backward(const Tensor& gate_up, const Tensor& dy, int activation) {
  const char* op = "gated_act_backward";
  expect(gate_up.ndim() == 2 && dy.ndim() == 2 && gate_up.dim(0) == dy.dim(0) && gate_up.dim(1) == 2 * dy.dim(1), op,
         "x " + shape_string(gate_up.shape()) + ", dy " + shape_string(dy.shape()));
  Backend& be = gate_up.backend();
  Tensor dx = Tensor::empty(be, MOE_DTYPE_F32, gate_up.shape());
  moe_tensor xr = gate_up.ref(), dyr = dy.ref(), dxr = dx.ref();
  be.check(training_op(be, be.ops().gated_act_backward, op)(be.handle(), &xr, &dyr, activation, &dxr), op);
  return dx;
}

void embedding_backward(const Tensor& ids, const Tensor& dout, Tensor& dtable) {
  const char* op = "embedding_backward";
  expect(ids.numel() == dout.dim(0) && dout.dim(1) == dtable.dim(1) && dtable.dtype() == MOE_DTYPE_F32, op,
         "shapes do not agree");
  Backend& be = ids.backend();
  moe_tensor ir = ids.ref(), dr = dout.ref(), tr = dtable.ref();
  be.check(training_op(be, be.ops().embedding_backward, op)(be.handle(), &ir, &dr, &tr), op);
}

void kv_load(const Tensor& k_cache, const Tensor& v_cache, const Tensor& slot, const Tensor& position, Tensor& k,
             Tensor& v) {
  const char* op = "kv_load";
  expect(k.ndim() == 3 && v.ndim() == 3 && k.dim(1) == k_cache.dim(1) && k.dim(2) == k_cache.dim(3) &&
             v.dim(2) == v_cache.dim(3) && slot.numel() == k.dim(0) && position.numel() == k.dim(0),
         op, "shapes do not agree");
  Backend& be = k.backend();
  moe_tensor kc = k_cache.ref(), vc = v_cache.ref(), sr = slot.ref(), pr = position.ref(), kr = k.ref(), vr = v.ref();
  be.check(training_op(be, be.ops().kv_load, op)(be.handle(), &kc, &vc, &sr, &pr, &kr, &vr), op);
}

void attention_backward(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache, const Tensor& slot,
                        const Tensor& kv_len, float scale, const Tensor& out, const Tensor& dout, Tensor& dq,
                        Tensor& dk_cache, Tensor& dv_cache) {
  const char* op = "attention_backward";
  expect(dq.shape() == q.shape() && dout.shape() == out.shape() && dk_cache.shape() == k_cache.shape() &&
             dv_cache.shape() == v_cache.shape(),
         op, "gradient shapes do not match their tensors");
  Backend& be = q.backend();
  moe_tensor qr = q.ref(), kc = k_cache.ref(), vc = v_cache.ref(), sr = slot.ref(), lr = kv_len.ref(), orf = out.ref(),
             dor = dout.ref(), dqr = dq.ref(), dkc = dk_cache.ref(), dvc = dv_cache.ref();
  be.check(training_op(be, be.ops().attention_backward, op)(be.handle(), &qr, &kc, &vc, &sr, &lr, scale, &orf, &dor,
                                                              &dqr, &dkc, &dvc),
           op);
}

Tensor route_softmax_topk_backward(const Tensor& logits, const Tensor& ids, bool normalize, const Tensor& dweights) {
  const char* op = "route_softmax_topk_backward";
  expect(ids.shape() == dweights.shape() && ids.dim(0) == logits.dim(0), op, "shapes do not agree");
  Backend& be = logits.backend();
  Tensor dlogits = Tensor::empty(be, MOE_DTYPE_F32, logits.shape());
  moe_tensor lr = logits.ref(), ir = ids.ref(), dwr = dweights.ref(), dlr = dlogits.ref();
  be.check(training_op(be, be.ops().route_softmax_topk_backward, op)(be.handle(), &lr, &ir, normalize ? 1 : 0, &dwr,
                                                                       &dlr),
           op);
  return dlogits;
}

Tensor route_sigmoid_topk_backward(const Tensor& logits, const Tensor& ids, bool normalize, float scaling,
                                   const Tensor& dweights) {
  const char* op = "route_sigmoid_topk_backward";
  expect(ids.shape() == dweights.shape() && ids.dim(0) == logits.dim(0), op, "shapes do not agree");
  Backend& be = logits.backend();
  Tensor dlogits = Tensor::empty(be, MOE_DTYPE_F32, logits.shape());
  moe_tensor lr = logits.ref(), ir = ids.ref(), dwr = dweights.ref(), dlr = dlogits.ref();
  be.check(training_op(be, be.ops().route_sigmoid_topk_backward, op)(be.handle(), &lr, &ir, normalize ? 1 : 0, scaling,
                                                                       &dwr, &dlr),
           op);
  return dlogits;
}

void moe_unpermute_backward(const Tensor& y_sorted, const Tensor& source, const Tensor& weights, const Tensor& dout,
                            Tensor& dy_sorted, Tensor* dweights) {
  const char* op = "moe_unpermute_backward";
  expect(dy_sorted.shape() == y_sorted.shape() && source.numel() == y_sorted.dim(0) && dout.dim(0) == weights.dim(0),
         op, "shapes do not agree");
  Backend& be = y_sorted.backend();
  moe_tensor yr = y_sorted.ref(), sr = source.ref(), wr = weights.ref(), dor = dout.ref(), dyr = dy_sorted.ref(),
             dwr = ref_or_empty(dweights);
  be.check(training_op(be, be.ops().moe_unpermute_backward, op)(be.handle(), &yr, &sr, &wr, &dor, &dyr,
                                                                  dweights ? &dwr : nullptr),
           op);
}

void expert_mlp_backward(const Tensor& x_sorted, const Tensor& offsets, const Tensor& gate_up, const Tensor& down,
                         int activation, const Tensor& dy, Tensor* dx, Tensor* dgate_up, Tensor* ddown) {
  const char* op = "expert_mlp_backward";
  expect(dy.shape() == x_sorted.shape(), op, "dy must have the shape of x");
  if (dx) expect(dx->shape() == x_sorted.shape(), op, "dx must have the shape of x");
  if (dgate_up) expect(dgate_up->shape() == gate_up.shape() && dgate_up->dtype() == MOE_DTYPE_F32, op, "dgate_up");
  if (ddown) expect(ddown->shape() == down.shape() && ddown->dtype() == MOE_DTYPE_F32, op, "ddown");
  Backend& be = x_sorted.backend();
  moe_tensor xr = x_sorted.ref(), orf = offsets.ref(), gr = gate_up.ref(), dr = down.ref(), dyr = dy.ref(),
             dxr = ref_or_empty(dx), dgr = ref_or_empty(dgate_up), ddr = ref_or_empty(ddown);
  be.check(training_op(be, be.ops().expert_mlp_backward, op)(be.handle(), &xr, &orf, &gr, &dr, activation, &dyr,
                                                               dx ? &dxr : nullptr, dgate_up ? &dgr : nullptr,
                                                               ddown ? &ddr : nullptr),
           op);
}

void cross_entropy(const Tensor& logits, const Tensor& labels, int ignore_index, float label_smoothing,
                   float grad_scale, Tensor& loss, Tensor* dlogits) {
  const char* op = "cross_entropy";
  expect(logits.ndim() == 2 && labels.numel() == logits.dim(0) && loss.numel() == logits.dim(0), op,
         "logits " + shape_string(logits.shape()) + ", labels " + shape_string(labels.shape()));
  if (dlogits) expect(dlogits->shape() == logits.shape(), op, "dlogits must have the shape of logits");
  Backend& be = logits.backend();
  moe_tensor lr = logits.ref(), lbr = labels.ref(), lsr = loss.ref(), dr = ref_or_empty(dlogits);
  be.check(training_op(be, be.ops().cross_entropy, op)(be.handle(), &lr, &lbr, ignore_index, label_smoothing,
                                                         grad_scale, &lsr, dlogits ? &dr : nullptr),
           op);
}

void adamw_update(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, float lr, float beta1, float beta2, float eps,
                  float weight_decay, int64_t step) {
  const char* op = "adamw_update";
  expect(param.numel() == grad.numel() && param.numel() == m.numel() && param.numel() == v.numel() &&
             param.dtype() == MOE_DTYPE_F32,
         op, "param, grad and moments must be f32 of one size");
  Backend& be = param.backend();
  moe_tensor pr = param.ref(), gr = grad.ref(), mr = m.ref(), vr = v.ref();
  be.check(training_op(be, be.ops().adamw_update, op)(be.handle(), &pr, &gr, &mr, &vr, lr, beta1, beta2, eps,
                                                        weight_decay, step),
           op);
}

double sum_squares(const Tensor& x) {
  const char* op = "sum_squares";
  Backend& be = x.backend();
  Tensor out = Tensor::empty(be, MOE_DTYPE_F32, {1});
  moe_tensor xr = x.ref(), orf = out.ref();
  be.check(training_op(be, be.ops().sum_squares, op)(be.handle(), &xr, &orf), op);
  float value = 0;
  out.copy_to_host(&value, sizeof value);
  return value;
}

void scale(Tensor& x, float alpha) {
  const char* op = "scale";
  Backend& be = x.backend();
  moe_tensor xr = x.ref();
  be.check(training_op(be, be.ops().scale, op)(be.handle(), &xr, alpha), op);
}

void add_gumbel_noise(Tensor& logits, uint64_t seed, uint64_t offset, float scale_by) {
  const char* op = "add_gumbel_noise";
  expect(logits.ndim() == 2 && logits.dtype() == MOE_DTYPE_F32, op, "logits must be f32 [tokens, experts]");
  Backend& be = logits.backend();
  moe_tensor lr = logits.ref();
  be.check(training_op(be, be.ops().add_gumbel_noise, op)(be.handle(), &lr, seed, offset, scale_by), op);
}

void copy(const Tensor& src, Tensor& dst) {
  expect(src.nbytes() == dst.nbytes(), "copy", "sizes differ");
  if (!src.nbytes()) return;
  Backend& be = src.backend();
  be.check(be.ops().copy(be.handle(), dst.data(), src.data(), src.nbytes()), "copy");
}

Tensor clone(const Tensor& src) {
  Tensor dst = Tensor::empty(src.backend(), src.dtype(), src.shape());
  copy(src, dst);
  return dst;
}

void argmax_rows(const Tensor& x, Tensor& out) {
  const char* op = "argmax_rows";
  expect_dtype(x, MOE_DTYPE_F32, op, "x");
  expect_ndim(x, 2, op, "x");
  expect(x.dim(1) >= 1, op, "x " + shape_string(x.shape()) + " has rows of no values");
  expect_dtype(out, MOE_DTYPE_I32, op, "out");
  expect(out.ndim() == 1 && out.dim(0) == x.dim(0), op,
         "out " + shape_string(out.shape()) + " must have one element per row of x " + shape_string(x.shape()));
  expect_same_backend(x, out, op);
  Backend& be = x.backend();
  if (!be.has_argmax_rows())
    fail(MOE_ERR_UNSUPPORTED, "backend '" + be.name() + "' does not implement argmax_rows (plugin ABI 1.3)");
  if (x.dim(0) == 0) return;
  moe_tensor xr = x.ref(), orf = out.ref();
  be.check(be.ops().argmax_rows(be.handle(), &xr, &orf), op);
}

Tensor argmax_rows(const Tensor& x) {
  Tensor out = Tensor::empty(x.backend(), MOE_DTYPE_I32, {x.ndim() == 2 ? x.dim(0) : 0});
  argmax_rows(x, out);
  return out;
}

}  // namespace moe::ops
