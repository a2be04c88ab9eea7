// The dense products of the seed-1.2B training step (Mixtral, d_model 1024, vocab 32000, 8192 tokens)
// timed three ways on f32 operands, to choose how gemm.cu runs them under MOE_CUDA_F32_MATH=bf16:
//   fast16bf   cublasGemmEx on the f32 operands with CUBLAS_COMPUTE_32F_FAST_16BF (cuBLAS rounds them);
//   rounded    both operands rounded to packed bf16 first (the kernel of convert.cu's f32_to_bf16, 4-wide)
//              and bf16 x bf16 -> f32 with CUBLAS_COMPUTE_32F (what gemm.cu does above its size limit);
//   bf16 only  the bf16 product alone (the rounding's cost is rounded - bf16 only).
// Each is the median of 15 timed calls (CUDA events) after 3 warm-up calls. Row-major C = A' B' as
// cuBLAS's column-major C^T = B'^T A'^T, as gemm.cu does.
//
//   gemm_rounding_bench            (prints one table; needs a GPU)
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <vector>

namespace {

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) {
    std::fprintf(stderr, "%s: %s\n", what, cudaGetErrorString(e));
    std::exit(1);
  }
}
void check(cublasStatus_t s, const char* what) {
  if (s != CUBLAS_STATUS_SUCCESS) {
    std::fprintf(stderr, "%s: cuBLAS status %d\n", what, static_cast<int>(s));
    std::exit(1);
  }
}

// Packed rows (length a multiple of 4), as convert.cu's f32_to_bf16_by_4 on packed operands.
__global__ void round_to_bf16(const float4* src, uint2* dst, int64_t n4) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n4; i += int64_t{gridDim.x} * blockDim.x) {
    const float4 v = src[i];
    const __nv_bfloat162 lo = __floats2bfloat162_rn(v.x, v.y), hi = __floats2bfloat162_rn(v.z, v.w);
    dst[i] = make_uint2(*reinterpret_cast<const unsigned*>(&lo), *reinterpret_cast<const unsigned*>(&hi));
  }
}

__global__ void fill(float* x, int64_t n, unsigned seed) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n; i += int64_t{gridDim.x} * blockDim.x)
    x[i] = static_cast<float>((i * 2654435761u + seed) % 2001u) / 1000.f - 1.f;
}

unsigned blocks_for(int64_t n) { return static_cast<unsigned>(std::min<int64_t>((n + 255) / 256, 1 << 16)); }

struct Shape {
  const char* what;
  int m, n, k;
  bool trans_a, trans_b;
};

template <typename Call>
float median_us(cudaStream_t stream, Call&& call) {
  cudaEvent_t start, stop;
  check(cudaEventCreate(&start), "cudaEventCreate");
  check(cudaEventCreate(&stop), "cudaEventCreate");
  for (int i = 0; i < 3; ++i) call();
  std::vector<float> times;
  for (int i = 0; i < 15; ++i) {
    check(cudaEventRecord(start, stream), "cudaEventRecord");
    call();
    check(cudaEventRecord(stop, stream), "cudaEventRecord");
    check(cudaEventSynchronize(stop), "cudaEventSynchronize");
    float ms = 0;
    check(cudaEventElapsedTime(&ms, start, stop), "cudaEventElapsedTime");
    times.push_back(ms * 1000.f);
  }
  check(cudaGetLastError(), "a kernel");
  std::sort(times.begin(), times.end());
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  return times[times.size() / 2];
}

}  // namespace

int main() {
  const Shape shapes[] = {
      {"attn proj fwd  X W^T", 8192, 1024, 1024, false, true},
      {"attn proj dX   dY W", 8192, 1024, 1024, false, false},
      {"attn proj dW   dY^T X", 1024, 1024, 8192, true, false},
      {"kv proj fwd    X W^T", 8192, 512, 1024, false, true},
      {"lm head fwd    X W^T", 8192, 32000, 1024, false, true},
      {"lm head dX     dY W", 8192, 1024, 32000, false, false},
      {"lm head dW     dY^T X", 32000, 1024, 8192, true, false},
      {"router fwd     X W^T", 8192, 16, 1024, false, true},
      {"small          X W^T", 512, 512, 512, false, true},
      {"small          X W^T", 256, 256, 256, false, true},
  };
  cudaStream_t stream;
  check(cudaStreamCreate(&stream), "cudaStreamCreate");
  cublasHandle_t blas;
  check(cublasCreate(&blas), "cublasCreate");
  check(cublasSetStream(blas, stream), "cublasSetStream");
  std::printf("%-22s %6s %6s %6s | %10s %8s | %10s %8s | %10s\n", "product", "m", "n", "k", "fast16bf us", "TFLOP/s",
              "rounded us", "TFLOP/s", "bf16 only");
  for (const Shape& s : shapes) {
    const int64_t a_size = int64_t{s.m} * s.k, b_size = int64_t{s.n} * s.k, c_size = int64_t{s.m} * s.n;
    float *a, *b, *c;
    void *a16, *b16;
    check(cudaMalloc(&a, a_size * 4), "cudaMalloc");
    check(cudaMalloc(&b, b_size * 4), "cudaMalloc");
    check(cudaMalloc(&c, c_size * 4), "cudaMalloc");
    check(cudaMalloc(&a16, a_size * 2), "cudaMalloc");
    check(cudaMalloc(&b16, b_size * 2), "cudaMalloc");
    fill<<<blocks_for(a_size), 256, 0, stream>>>(a, a_size, 1);
    fill<<<blocks_for(b_size), 256, 0, stream>>>(b, b_size, 2);
    const int lda = s.trans_a ? s.m : s.k, ldb = s.trans_b ? s.k : s.n;
    const float alpha = 1.f, beta = 0.f;
    auto product = [&](const void* pa, const void* pb, cudaDataType_t t, cublasComputeType_t compute) {
      check(cublasGemmEx(blas, s.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, s.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, s.n, s.m,
                         s.k, &alpha, pb, t, ldb, pa, t, lda, &beta, c, CUDA_R_32F, s.n, compute, CUBLAS_GEMM_DEFAULT),
            "cublasGemmEx");
    };
    const float fast = median_us(stream, [&] { product(a, b, CUDA_R_32F, CUBLAS_COMPUTE_32F_FAST_16BF); });
    const float rounded = median_us(stream, [&] {
      round_to_bf16<<<blocks_for(a_size / 4), 256, 0, stream>>>(reinterpret_cast<const float4*>(a),
                                                                 static_cast<uint2*>(a16), a_size / 4);
      round_to_bf16<<<blocks_for(b_size / 4), 256, 0, stream>>>(reinterpret_cast<const float4*>(b),
                                                                 static_cast<uint2*>(b16), b_size / 4);
      product(a16, b16, CUDA_R_16BF, CUBLAS_COMPUTE_32F);
    });
    const float bf16_only = median_us(stream, [&] { product(a16, b16, CUDA_R_16BF, CUBLAS_COMPUTE_32F); });
    const double flop = 2.0 * s.m * s.n * s.k;
    std::printf("%-22s %6d %6d %6d | %10.1f %8.0f | %10.1f %8.0f | %10.1f\n", s.what, s.m, s.n, s.k, fast,
                flop / fast * 1e-6, rounded, flop / rounded * 1e-6, bf16_only);
    cudaFree(a);
    cudaFree(b);
    cudaFree(c);
    cudaFree(a16);
    cudaFree(b16);
  }
  cublasDestroy(blas);
  cudaStreamDestroy(stream);
  return 0;
}
