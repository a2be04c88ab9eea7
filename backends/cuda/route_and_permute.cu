// route_and_permute (plugin ABI 1.5): a MoE layer's input norm, router product, routing and dispatch.
//
// A recorded decode step ran them as four kernels (rmsnorm_rows, small_m_gemm, the router,
// permute_one_block), each a few microseconds of launch and dependency latency around almost no work. Here,
// while recording a few tokens, they are one block: the block norms the rows as the rmsnorm op does
// (rmsnorm_device.cuh, the same block size) into h, each warp computes (token, expert) logits as
// small_m_gemm computes each output, one thread per token routes it with the routers' own code
// (routing_device.cuh), and the block then permutes with moe_permute's (permute_block.cuh), so the results
// are the four kernels' bit for bit. The router's weights, which no kernel of a step writes, are fetched into
// L2 before the block waits for the kernel ahead of it (pdl_launch.cuh).
//
// Everything else (eager calls, more tokens than the block takes, shapes small_m_gemm does not take) runs
// the ops in turn. The one-block kernel has not yet run on a GPU: until a GPU check has shown it equal to
// the ops, it runs only where MOE_CUDA_FUSED_DECODE=1 (fused_decode.h).
#include <string>

#include "backend_instance.h"
#include "backend_ops.h"
#include "device_index_checks.h"
#include "fused_decode.h"
#include "moe_permute.h"
#include "pdl_launch.cuh"
#include "permute_block.cuh"
#include "recording.h"
#include "rmsnorm.h"
#include "rmsnorm_device.cuh"
#include "routing.h"
#include "routing_device.cuh"
#include "small_m_dot.cuh"
#include "small_m_gemm.h"
#include "tensor_checks.h"

namespace moe_cuda {
namespace {

// Tokens the one-block kernel takes: small_m_gemm's row limit, and a decode step's batch.
constexpr int64_t kMaxBlockTokens = 16;
constexpr size_t kMaxCountBytes = 48 * 1024;  // the experts' counts, in shared memory
constexpr int kWarps = kSortThreads / 32;

// Asks for the bytes [p, p + bytes) in L2, a 128-byte line per request, spread over the block.
__device__ __forceinline__ void prefetch_l2(const void* p, size_t bytes) {
#if defined(__CUDA_ARCH__)
  const char* base = static_cast<const char*>(p);
  for (size_t at = size_t{threadIdx.x} * 128; at < bytes; at += size_t{blockDim.x} * 128)
    asm volatile("prefetch.L2 [%0];" ::"l"(base + at));
#endif
}

// The layer's norm, where it has one: h = rmsnorm(x) (nullptr weight: h is x, and nothing is written).
struct LayerNorm {
  const void* weight = nullptr;
  bool bf16 = false;
  float eps = 0.f;
};

template <typename W>
__global__ void __launch_bounds__(kSortThreads)
    route_and_permute_block(const float* x, LayerNorm norm, float* h_out, const W* router, const float* bias,
                            int64_t tokens, int64_t dim, int experts, bool sigmoid, int n_group, int topk_group,
                            int top_k, bool normalize, float scaling, float* logits, int32_t* ids, float* weights,
                            float* x_sorted, int64_t* offsets, int32_t* source, IndexError* errors) {
  static_assert(kSortThreads == kNormThreads, "the norm's sums need the rmsnorm op's block size");
  extern __shared__ int counts[];
  __shared__ int scan[kSortThreads];
  __shared__ int chunk[kSortThreads];
  prefetch_l2(router, static_cast<size_t>(experts) * static_cast<size_t>(dim) * sizeof(W));
  pdl_wait_and_release();
  const float* h = x;
  if (norm.weight) {
    // The rmsnorm op's rows, token by token; the block's writes to h are visible to it after the barrier.
    __shared__ double scratch[32];
    for (int64_t t = 0; t < tokens; ++t) {
      const float rstd = row_rstd(x + t * dim, dim, norm.eps, scratch);
      for (int64_t j = threadIdx.x; j < dim; j += kSortThreads)
        h_out[t * dim + j] = normed_value(x[t * dim + j], rstd, norm.weight, norm.bf16, j);
    }
    __syncthreads();
    h = h_out;
  }
  // logits = h . router^T, alpha 1 and beta 0 as the gemm op's caller passes them to small_m_gemm.
  const int warp = threadIdx.x / 32;
  const float alpha = 1.f, beta = 0.f;
  for (int64_t pair = warp; pair < tokens * experts; pair += kWarps) {
    const int64_t t = pair / experts, e = pair % experts;
    const float sum = small_m_dot(router + e * dim, h + t * dim, dim);
    if (threadIdx.x % 32 == 0) logits[pair] = alpha * sum + (beta == 0.f ? 0.f : beta * logits[pair]);
  }
  __syncthreads();
  for (int64_t t = threadIdx.x; t < tokens; t += kSortThreads) {
    if (sigmoid)
      route_token_sigmoid(logits + t * experts, bias, experts, n_group, topk_group, top_k, normalize, scaling,
                          ids + t * top_k, weights + t * top_k);
    else
      route_token_softmax(logits + t * experts, experts, top_k, normalize, ids + t * top_k, weights + t * top_k);
  }
  __syncthreads();
  permute_in_block(h, ids, tokens, top_k, experts, dim, x_sorted, offsets, source, errors, counts, scan, chunk);
}

}  // namespace

moe_status cuda_route_and_permute(moe_backend* be, const moe_tensor* x, const moe_tensor* norm_weight, float eps,
                                  moe_tensor* h, const moe_tensor* router, int32_t sigmoid, const moe_tensor* bias,
                                  int32_t n_group, int32_t topk_group, int32_t top_k, int32_t normalize, float scaling,
                                  moe_tensor* logits, moe_tensor* ids, moe_tensor* weights, moe_tensor* x_sorted,
                                  moe_tensor* offsets, moe_tensor* source) {
  int64_t tokens = 0, dim = 0, experts = 0;
  bool one_block = false;
  const moe_status checked = guarded(be, [&](moe_backend& b) {
    check_tensor(x, "x", MOE_DTYPE_F32, 2);
    if (!router) invalid("router is null");
    if (router->dtype != MOE_DTYPE_F32 && router->dtype != MOE_DTYPE_BF16)
      fail(MOE_ERR_UNSUPPORTED, std::string("router must be f32 or bf16, is ") + dtype_name(router->dtype));
    check_tensor(router, "router", router->dtype, 2);
    tokens = x->shape[0];
    dim = x->shape[1];
    experts = router->shape[0];
    if (router->shape[1] != dim)
      invalid("router " + shape_string(*router) + " must be [experts, dim] for x " + shape_string(*x));
    if (experts > INT32_MAX) invalid("router " + shape_string(*router) + " has more experts than i32 ids can name");
    check_tensor(logits, "logits", MOE_DTYPE_F32, 2);
    if (logits->shape[0] != tokens || logits->shape[1] != experts)
      invalid("logits " + shape_string(*logits) + " must be [tokens, experts] = [" + std::to_string(tokens) + ", " +
              std::to_string(experts) + "]");
    if (!sigmoid && bias) invalid("bias is given, but the softmax router takes none (sigmoid = 0)");
    if (norm_weight) {
      check_tensor(h, "h", MOE_DTYPE_F32, 2);
      if (h->shape[0] != tokens || h->shape[1] != dim)
        invalid("h " + shape_string(*h) + " must be x's shape " + shape_string(*x));
      check_disjoint(h, "h", x, "x", "h is written while x is read");
    }
    const moe_tensor* normed = norm_weight ? h : x;
    one_block = recording(b) && fused_decode_switched_on("route_and_permute") && tokens >= 1 &&
                tokens <= kMaxBlockTokens && static_cast<size_t>(experts + 1) * sizeof(int) <= kMaxCountBytes &&
                small_m_gemm_applies(b, false, true, tokens, experts, dim, normed->data, MOE_DTYPE_F32, dim,
                                     router->data, router->dtype, dim, MOE_DTYPE_F32);
    if (!one_block) return;  // the ops below check the rest themselves
    LayerNorm norm;
    if (norm_weight) {
      check_rmsnorm(x, norm_weight, eps, h);
      norm = LayerNorm{norm_weight->data, norm_weight->dtype == MOE_DTYPE_BF16, eps};
    }
    check_router(logits, top_k, ids, weights);
    if (sigmoid) check_sigmoid_router(experts, bias, n_group, topk_group, top_k);
    check_permute(normed, ids, static_cast<int32_t>(experts), x_sorted, offsets, source);
    const size_t smem = static_cast<size_t>(experts + 1) * sizeof(int);
    const float* bias_data = bias ? data_of<const float>(bias) : nullptr;
    float* h_data = norm_weight ? data_of<float>(h) : nullptr;
    if (router->dtype == MOE_DTYPE_BF16)
      launch_pdl(b, "route_and_permute_block", route_and_permute_block<__nv_bfloat16>, 1, kSortThreads, smem,
                 data_of<const float>(x), norm, h_data, data_of<const __nv_bfloat16>(router), bias_data, tokens, dim,
                 static_cast<int>(experts), sigmoid != 0, n_group, topk_group, top_k, normalize != 0, scaling,
                 data_of<float>(logits), data_of<int32_t>(ids), data_of<float>(weights), data_of<float>(x_sorted),
                 data_of<int64_t>(offsets), data_of<int32_t>(source), device_index_errors(b));
    else
      launch_pdl(b, "route_and_permute_block", route_and_permute_block<float>, 1, kSortThreads, smem,
                 data_of<const float>(x), norm, h_data, data_of<const float>(router), bias_data, tokens, dim,
                 static_cast<int>(experts), sigmoid != 0, n_group, topk_group, top_k, normalize != 0, scaling,
                 data_of<float>(logits), data_of<int32_t>(ids), data_of<float>(weights), data_of<float>(x_sorted),
                 data_of<int64_t>(offsets), data_of<int32_t>(source), device_index_errors(b));
  });
  if (checked != MOE_OK || one_block) return checked;
  // The ops in turn; each reports its own failure.
  moe_status s = MOE_OK;
  if (norm_weight) {
    s = cuda_rmsnorm(be, x, norm_weight, eps, h);
    if (s != MOE_OK) return s;
  }
  const moe_tensor* normed = norm_weight ? h : x;
  s = cuda_gemm(be, 0, 1, tokens, experts, dim, 1.f, normed->data, MOE_DTYPE_F32, dim, router->data, router->dtype, dim,
                0.f, logits->data, MOE_DTYPE_F32, experts);
  if (s != MOE_OK) return s;
  s = sigmoid ? cuda_route_sigmoid_group_topk(be, logits, bias, n_group, topk_group, top_k, normalize, scaling, ids,
                                              weights)
              : cuda_route_softmax_topk(be, logits, top_k, normalize, ids, weights);
  if (s != MOE_OK) return s;
  return cuda_moe_permute(be, normed, ids, static_cast<int32_t>(experts), x_sorted, offsets, source);
}

}  // namespace moe_cuda
