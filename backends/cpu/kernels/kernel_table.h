// The hand-vectorised kernels, one table per instruction set (kernels/*.cpp are compiled once per
// set, see CMakeLists.txt). Every kernel here is single-threaded: the op code around it splits the
// work over OpenMP threads and calls a kernel on each piece.
#pragma once

#include <cstddef>
#include <cstdint>

namespace moe_cpu {

// C[m, n] = alpha * sum_k A[m, k] * B'[k, n] + beta * C[m, n] for few rows m (see gemm.h), restricted
// to the output columns [n_begin, n_end). A is f32; B is f32 or bf16 (widened exactly, so products
// and sums are f32). With trans_b, B is [n, k] (row n at b + n * ldb); otherwise [k, n]. When beta is
// 0, C is not read (it may hold NaN).
struct GemvArgs {
  int64_t m, n, k;
  const float* a;
  int64_t lda;
  const void* b;
  bool b_is_bf16;
  bool trans_b;
  int64_t ldb;
  float alpha, beta;
  float* c;
  int64_t ldc;
};

// One attention work item: query rows (token t, head g) for t in [0, tokens), g in [0, heads),
// all reading the same cache rows (one kv head of one slot). Row (t, g) reads q + t * q_token_stride +
// g * dk, attends to cache rows [0, kv_len[t]) and writes out + t * out_token_stride + g * dv.
struct AttentionItem {
  const float* q;
  int64_t q_token_stride;
  const float* k;  // [capacity, dk] of this slot and kv head
  const float* v;  // [capacity, dv]
  const int32_t* kv_len;  // [tokens], each in [1, capacity]
  int64_t tokens, heads, dk, dv;
  float scale;
  float* out;
  int64_t out_token_stride;
};

// One attention_backward work item: the query rows (token tokens[i], head h) for i < n_tokens and h in
// [head0, head0 + heads), all reading the same cache rows (one kv head of one slot). Row r = token *
// heads_total + h of q, dq [.., dk] and out, dout [.., dv]; keys [0, kv_len[token]) of k, v and of
// their gradients dk_grad, dv_grad, which the item adds into.
struct AttentionBackwardItem {
  const float* q;
  const float* out;
  const float* dout;
  float* dq;
  int64_t heads_total;
  const int64_t* tokens;
  int64_t n_tokens, head0, heads;
  const int32_t* kv_len;  // indexed by token
  const float* k;  // [capacity, dk]
  const float* v;  // [capacity, dv]
  float* dk_grad;
  float* dv_grad;
  int64_t dk, dv;
  float scale;
};

struct KernelTable {
  const char* isa;  // "avx512" or "avx2"

  void (*gemv)(const GemvArgs& args, int64_t n_begin, int64_t n_end);

  // Floats of scratch attention_item needs for an item of `rows` query rows.
  size_t (*attention_scratch_floats)(int64_t rows, int64_t dk, int64_t dv);
  // Blocked attention with an online softmax; scratch is 64-byte aligned.
  void (*attention_item)(const AttentionItem& item, float* scratch);

  // Floats of scratch attention_backward_item needs for items reading up to `keys` keys.
  size_t (*attention_backward_scratch_floats)(int64_t keys, int64_t dk, int64_t dv);
  void (*attention_backward_item)(const AttentionBackwardItem& item, float* scratch);

  // y[j] = act(x[j]) * x[j + width], j < width (one row of gated_act); act is MOE_ACT_*.
  void (*gated_act_row)(const float* x, float* y, int64_t width, int32_t activation);
  // The same, written as bf16 (the input of a bf16 expert down projection).
  void (*gated_act_row_bf16)(const float* x, uint16_t* y, int64_t width, int32_t activation);
  // dx [2 * width] = the gradient of one gated_act row x [2 * width] for dy [width].
  void (*gated_act_backward_row)(const float* x, const float* dy, int64_t width, int32_t activation, float* dx);

  // y = 1 / (1 + exp(-x)) (the DeepSeek router's scores).
  void (*sigmoid)(const float* x, float* y, int64_t count);
  // y = exp(x - shift); returns the sum of y (softmax numerators and denominator).
  float (*exp_shifted_sum)(const float* x, float shift, float* y, int64_t count);

  // y = x / sqrt(mean(x^2) + eps) * weight over one row (weight f32 or bf16); y may be x.
  void (*rmsnorm_row)(const float* x, const void* weight, bool weight_is_bf16, float eps, int64_t width, float* y);

  void (*f32_to_bf16)(const float* src, uint16_t* dst, int64_t count);  // round to nearest even
  void (*bf16_to_f32)(const uint16_t* src, float* dst, int64_t count);
};

namespace avx2 {
const KernelTable& kernel_table();
}
namespace avx512 {
const KernelTable& kernel_table();
}

}  // namespace moe_cpu
