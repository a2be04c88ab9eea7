// expert_mlp_backward: per expert with rows X [m, dim], weights W1 = gate_up[e] [2F, dim] and
// W2 = down[e] [dim, F], and upstream dY [m, dim], the forward pass is recomputed (H = X W1^T,
// A = act(H_gate) * H_up) and
//   ddown[e] += dY^T A,   dA = dY W2,   dH = gated_act_backward(H, dA),
//   dgate_up[e] += dH^T X,   dX = dH W1,
// each product one grouped call over the experts that have rows (experts.h). With bf16 weights the
// weight gradients come out of the bf16 products as bf16 and are added into the f32 gradients.
#include <string>

#include "activation.h"
#include "backend_instance.h"
#include "backend_ops.h"
#include "convert.h"
#include "device_buffer.h"
#include "experts.h"
#include "grouped_gemm.h"
#include "tensor_checks.h"

namespace moe_cuda {
namespace {

struct Gradients {
  float* dx;        // [rows, dim] or null
  float* dgate_up;  // [experts, 2F, dim] or null
  float* ddown;     // [experts, dim, F] or null
};

// Rows [r.first, r.first + r.count) of one matrix: a base pointer at row r.first, its row stride and type.
struct Rows {
  void* base;
  int64_t ld;
  size_t element;
  char* at(const ExpertRows& r, int64_t row) const {
    return static_cast<char*>(base) + static_cast<size_t>((row - r.first) * ld) * element;
  }
};

void experts_backward(moe_backend& be, const ExpertShapes& s, const ExpertRows& r, Rows x, Rows dy, const void* gate_up,
                      const void* down, int32_t activation, const Gradients& out) {
  const moe_dtype t = s.wtype;
  const bool bf16 = t == MOE_DTYPE_BF16;
  const size_t el = element_bytes(t);
  const int64_t f = s.width, f2 = 2 * f, dim = s.dim;
  const int64_t ldh = padded_row(f2, t), lda = padded_row(f, t);
  DeviceBuffer h_buf(be, static_cast<size_t>(r.count * ldh) * el), a_buf(be, static_cast<size_t>(r.count * lda) * el);
  const Rows h{h_buf.as<void>(), ldh, el}, a{a_buf.as<void>(), lda, el};
  auto w1 = [&](int64_t e) { return static_cast<const char*>(gate_up) + static_cast<size_t>(e * f2 * dim) * el; };
  auto w2 = [&](int64_t e) { return static_cast<const char*>(down) + static_cast<size_t>(e * dim * f) * el; };

  std::vector<GroupedProblem> p;
  for (int64_t e : r.active) p.push_back({x.at(r, r.begin(e)), w1(e), h.at(r, r.begin(e)), r.size(e), f2, dim, x.ld, dim, ldh});
  grouped_gemm(be, t, false, true, 1.f, 0.f, p);
  gated_act_rows(be, h.base, t, ldh, a.base, t, lda, r.count, f, activation);

  // A weight gradient [rows_w, cols_w] of each active expert, = (first operand)^T . (second operand): f32
  // products go straight into the f32 gradient; bf16 products into a bf16 block per expert, then added.
  const DeviceBuffer expert_ids = upload_vector(be, std::vector<int32_t>(r.active.begin(), r.active.end()));
  auto weight_gradient = [&](Rows left, Rows right, int64_t rows_w, int64_t cols_w, float* grad) {
    const int64_t ldg = bf16 ? padded_row(cols_w, t) : cols_w;
    DeviceBuffer blocks(be, bf16 ? static_cast<size_t>(r.active.size() * rows_w * ldg) * el : 0);
    std::vector<GroupedProblem> q;
    for (size_t i = 0; i < r.active.size(); ++i) {
      const int64_t e = r.active[i];
      void* c = bf16 ? static_cast<void*>(blocks.as<char>() + i * rows_w * ldg * el)
                     : static_cast<void*>(grad + e * rows_w * cols_w);
      q.push_back({left.at(r, r.begin(e)), right.at(r, r.begin(e)), c, rows_w, cols_w, r.size(e), left.ld, right.ld, ldg});
    }
    grouped_gemm(be, t, true, false, 1.f, bf16 ? 0.f : 1.f, q);
    if (bf16)
      add_bf16_blocks(be, blocks.as<void>(), ldg, expert_ids.as<const int32_t>(), static_cast<int64_t>(r.active.size()),
                      rows_w, cols_w, grad);
  };

  if (out.ddown) weight_gradient(dy, a, dim, f, out.ddown);
  if (!out.dx && !out.dgate_up) return;
  // dA into the activation's buffer (A is no longer needed), then dH in place of H.
  p.clear();
  for (int64_t e : r.active) p.push_back({dy.at(r, r.begin(e)), w2(e), a.at(r, r.begin(e)), r.size(e), f, dim, dy.ld, f, lda});
  grouped_gemm(be, t, false, false, 1.f, 0.f, p);
  gated_act_backward_rows(be, h.base, ldh, a.base, lda, h.base, ldh, t, r.count, f, activation);
  if (out.dgate_up) weight_gradient(h, x, f2, dim, out.dgate_up);
  if (!out.dx) return;
  // dX = dH W1 (into dY's rows when bf16: dY is a converted copy, no longer needed).
  const Rows dx = bf16 ? dy : Rows{out.dx + r.first * dim, dim, el};
  p.clear();
  for (int64_t e : r.active) p.push_back({h.at(r, r.begin(e)), w1(e), dx.at(r, r.begin(e)), r.size(e), dim, f2, ldh, dim, dx.ld});
  grouped_gemm(be, t, false, false, 1.f, 0.f, p);
  if (bf16) bf16_to_f32(be, dx.base, dx.ld, out.dx + r.first * dim, dim, r.count, dim);
}

}  // namespace

moe_status cuda_expert_mlp_backward(moe_backend* be, const moe_tensor* x, const moe_tensor* offsets,
                                    const moe_tensor* gate_up, const moe_tensor* down, int32_t activation,
                                    const moe_tensor* dy, moe_tensor* dx, moe_tensor* dgate_up, moe_tensor* ddown) {
  return guarded(be, [&](moe_backend& b) {
    const ExpertShapes s = check_experts(x, gate_up, down, activation);
    const int64_t rows = s.rows, dim = s.dim;
    if (check_tensor(dy, "dy", MOE_DTYPE_F32, -1) != rows * dim)
      invalid("dy " + shape_string(*dy) + " must have the shape of x " + shape_string(*x));
    if (dx && check_tensor(dx, "dx", MOE_DTYPE_F32, -1) != rows * dim)
      invalid("dx " + shape_string(*dx) + " must have the shape of x " + shape_string(*x));
    if (dgate_up && check_tensor(dgate_up, "dgate_up", MOE_DTYPE_F32, -1) != s.experts * 2 * s.width * dim)
      invalid("dgate_up " + shape_string(*dgate_up) + " must have the shape of gate_up " + shape_string(*gate_up));
    if (ddown && check_tensor(ddown, "ddown", MOE_DTYPE_F32, -1) != s.experts * dim * s.width)
      invalid("ddown " + shape_string(*ddown) + " must have the shape of down " + shape_string(*down));
    const ExpertRows r = expert_rows(b, offsets, s);
    float* dxd = dx ? data_of<float>(dx) : nullptr;
    if (dxd) {  // rows outside every expert's block do not reach the output
      const size_t row_bytes = static_cast<size_t>(dim) * sizeof(float);
      check_cuda(cudaMemsetAsync(dxd, 0, r.first * row_bytes, b.stream), "cudaMemsetAsync");
      check_cuda(cudaMemsetAsync(dxd + (r.first + r.count) * dim, 0, (rows - r.first - r.count) * row_bytes, b.stream),
                 "cudaMemsetAsync");
    }
    if (r.count == 0 || dim == 0) return;
    if (s.width == 0) {
      if (dxd) check_cuda(cudaMemsetAsync(dxd, 0, rows * dim * sizeof(float), b.stream), "cudaMemsetAsync");
      return;
    }
    const Gradients grads{dxd, dgate_up ? data_of<float>(dgate_up) : nullptr, ddown ? data_of<float>(ddown) : nullptr};
    float* xd = const_cast<float*>(data_of<const float>(x)) + r.first * dim;
    float* dyd = const_cast<float*>(data_of<const float>(dy)) + r.first * dim;
    if (s.wtype == MOE_DTYPE_F32) {
      experts_backward(b, s, r, Rows{xd, dim, 4}, Rows{dyd, dim, 4}, gate_up->data, down->data, activation, grads);
      return;
    }
    const int64_t ld = padded_row(dim, MOE_DTYPE_BF16);
    DeviceBuffer xb(b, static_cast<size_t>(r.count * ld) * 2), dyb(b, static_cast<size_t>(r.count * ld) * 2);
    f32_to_bf16(b, xd, dim, xb.as<void>(), ld, r.count, dim);
    f32_to_bf16(b, dyd, dim, dyb.as<void>(), ld, r.count, dim);
    experts_backward(b, s, r, Rows{xb.as<void>(), ld, 2}, Rows{dyb.as<void>(), ld, 2}, gate_up->data, down->data,
                     activation, grads);
  });
}

}  // namespace moe_cuda
