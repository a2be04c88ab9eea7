// expert_mlp: each expert's gated MLP over its block of rows (rows grouped by moe_permute).
//
// Per expert with M rows: h = x . gate_up^T [M, 2F] (one matmul for gate and up), a = act(h_gate) *
// h_up [M, F], y = a . down^T. Experts run one after the other, each matmul on all threads.
#include <cstring>
#include <string>

#include "activation.h"
#include "backend_ops.h"
#include "errors.h"
#include "gemm.h"
#include "parallel.h"
#include "expert_schedule.h"
#include "row_buckets.h"
#include "tensor_checks.h"
#include "thread_scratch.h"

namespace moe_cpu {
namespace {

// Decode (a few rows): GEMV kernels on f32 activations.
void small_expert(moe_backend& be, int64_t m, int64_t dim, int64_t width, const float* x, const void* w_gate_up,
                  const void* w_down, moe_dtype wtype, int32_t activation, float* y) {
  float* hidden = thread_scratch_as<float>(ScratchSlot::kExpertHidden, static_cast<size_t>(m * 2 * width));
  float* activated = thread_scratch_as<float>(ScratchSlot::kExpertActivated, static_cast<size_t>(m * width));
  gemm(be, false, true, m, 2 * width, dim, 1.f, x, MOE_DTYPE_F32, dim, w_gate_up, wtype, dim, 0.f, hidden, 2 * width);
  for (int64_t r = 0; r < m; ++r)
    be.kernels.gated_act_row(hidden + r * 2 * width, activated + r * width, width, activation);
  gemm(be, false, true, m, dim, width, 1.f, activated, MOE_DTYPE_F32, width, w_down, wtype, width, 0.f, y, dim);
}

// Prefill: the rows are padded with zero rows up to a bucket size (row_buckets.h), so the matmul
// primitives come from a small set however the router splits the rows; the padding is at most 1/8.
// The padded input is also where x is converted to the weights' type, and the activation writes that
// type directly: no separate conversion pass.
void large_expert(moe_backend& be, int64_t m, int64_t dim, int64_t width, const float* x, const void* w_gate_up,
                  const void* w_down, moe_dtype wtype, int32_t activation, float* y) {
  const int64_t rows = round_rows_up(m);
  const bool bf16 = wtype == MOE_DTYPE_BF16;
  const size_t welem = bf16 ? 2 : 4;
  char* input = static_cast<char*>(thread_scratch(ScratchSlot::kExpertInput, static_cast<size_t>(rows * dim) * welem));
  float* hidden = thread_scratch_as<float>(ScratchSlot::kExpertHidden, static_cast<size_t>(rows * 2 * width));
  char* activated =
      static_cast<char*>(thread_scratch(ScratchSlot::kExpertActivated, static_cast<size_t>(rows * width) * welem));
  float* output = thread_scratch_as<float>(ScratchSlot::kExpertOutput, static_cast<size_t>(rows * dim));
  const auto type = bf16 ? dnnl::memory::data_type::bf16 : dnnl::memory::data_type::f32;

  parallel_ranges(be, rows, kMinFloatsPerThread / (2 * dim + 1) + 1, 1, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      char* row = input + r * dim * welem;
      if (r >= m)
        std::memset(row, 0, dim * welem);
      else if (bf16)
        be.kernels.f32_to_bf16(x + r * dim, reinterpret_cast<uint16_t*>(row), dim);
      else
        std::memcpy(row, x + r * dim, dim * sizeof(float));
    }
  });
  be.matmuls.run(MatmulShape{rows, 2 * width, dim, dim, dim, 2 * width, type, type, false, true, 1.f, 0.f}, input,
                 w_gate_up, hidden);
  parallel_ranges(be, rows, kMinFloatsPerThread / (3 * width + 1) + 1, 1, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      if (bf16)
        be.kernels.gated_act_row_bf16(hidden + r * 2 * width, reinterpret_cast<uint16_t*>(activated) + r * width,
                                      width, activation);
      else
        be.kernels.gated_act_row(hidden + r * 2 * width, reinterpret_cast<float*>(activated) + r * width, width,
                                 activation);
    }
  });
  be.matmuls.run(MatmulShape{rows, dim, width, width, width, dim, type, type, false, true, 1.f, 0.f}, activated, w_down,
                 output);
  parallel_ranges(be, m, kMinFloatsPerThread / (2 * dim + 1) + 1, 1, [&](int64_t begin, int64_t end) {
    std::memcpy(y + begin * dim, output + begin * dim, (end - begin) * dim * sizeof(float));
  });
}

}  // namespace

moe_status cpu_expert_mlp(moe_backend* be, const moe_tensor* x, const moe_tensor* offsets, const moe_tensor* gate_up,
                          const moe_tensor* down, int32_t activation, moe_tensor* y) {
  return guarded([&] {
    moe_backend& backend = backend_of(be);
    check_tensor(x, "x", MOE_DTYPE_F32, 2);
    check_tensor(y, "y", MOE_DTYPE_F32, 2);
    check_float_tensor(gate_up, "gate_up", 3);
    check_float_tensor(down, "down", 3);
    check_activation(activation);
    const int64_t rows = x->shape[0], dim = x->shape[1];
    const int64_t experts = gate_up->shape[0], width = gate_up->shape[1] / 2;
    if (y->shape[0] != rows || y->shape[1] != dim)
      invalid("y " + shape_string(*y) + " must have the shape of x " + shape_string(*x));
    if (down->dtype != gate_up->dtype)
      fail(MOE_ERR_UNSUPPORTED, std::string("gate_up is ") + dtype_name(gate_up->dtype) + " but down is " +
                                    dtype_name(down->dtype) + ": the experts' weights must share one dtype");
    if (gate_up->shape[1] % 2 || gate_up->shape[2] != dim || down->shape[0] != experts || down->shape[1] != dim ||
        down->shape[2] != width)
      invalid("gate_up " + shape_string(*gate_up) + " must be [experts, 2F, dim] and down " + shape_string(*down) +
              " [experts, dim, F] for x " + shape_string(*x));
    if (check_tensor(offsets, "offsets", MOE_DTYPE_I64, -1) != experts + 1)
      invalid("offsets " + shape_string(*offsets) + " must have experts + 1 = " + std::to_string(experts + 1) +
              " entries");
    const int64_t* off = data_of<const int64_t>(offsets);
    for (int64_t e = 0; e <= experts; ++e)
      if (off[e] < (e ? off[e - 1] : 0) || off[e] > rows)
        invalid("offsets[" + std::to_string(e) + "] = " + std::to_string(off[e]) +
                " breaks 0 <= offsets[0] <= ... <= offsets[experts] <= rows = " + std::to_string(rows));
    if (width == 0 || dim == 0) {
      for (int64_t r = off[0]; r < off[experts]; ++r)
        for (int64_t c = 0; c < dim; ++c) data_of<float>(y)[r * dim + c] = 0.f;
      return;
    }

    const moe_dtype wtype = gate_up->dtype;
    const size_t welem = wtype == MOE_DTYPE_BF16 ? 2 : 4;
    const auto* gu = static_cast<const char*>(gate_up->data);
    const auto* dn = static_cast<const char*>(down->data);
    const float* xd = data_of<const float>(x);
    float* yd = data_of<float>(y);
    auto run_expert = [&](int64_t e) {
      const int64_t m = off[e + 1] - off[e];
      const char* w_gate_up = gu + static_cast<size_t>(e * 2 * width * dim) * welem;
      const char* w_down = dn + static_cast<size_t>(e * dim * width) * welem;
      if (m <= gemv_max_rows(wtype))
        small_expert(backend, m, dim, width, xd + off[e] * dim, w_gate_up, w_down, wtype, activation,
                     yd + off[e] * dim);
      else
        large_expert(backend, m, dim, width, xd + off[e] * dim, w_gate_up, w_down, wtype, activation,
                     yd + off[e] * dim);
    };
    const ExpertSchedule schedule = schedule_experts(backend, off, experts, kExpertsShareRows);
    for (int64_t e : schedule.solo) run_expert(e);
    parallel_items(backend, static_cast<int64_t>(schedule.shared.size()),
                   [&](int, int64_t i) { run_expert(schedule.shared[i]); });
  });
}

}  // namespace moe_cpu
