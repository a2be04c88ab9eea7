// Instances: create (device, stream, cuBLAS handle, memory pool), destroy, describe; and score(),
// which the host calls before anything else.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "backend_instance.h"
#include "backend_ops.h"
#include "instance.h"
#include "op_profile.h"

namespace moe_cuda {
namespace {

// cuBLAS's workspace: what its larger split-K and stream-K kernels ask for on Hopper.
constexpr size_t kBlasWorkspaceBytes = size_t{32} << 20;

std::string version_string(int v) { return std::to_string(v / 1000) + "." + std::to_string(v % 1000 / 10); }

std::string describe(const moe_backend& be) {
  cudaDeviceProp p{};
  check_cuda(cudaGetDeviceProperties(&p, be.device), "cudaGetDeviceProperties");
  int runtime = 0, driver = 0, blas = 0;
  cudaRuntimeGetVersion(&runtime);
  cudaDriverGetVersion(&driver);
  cublasGetVersion(be.blas, &blas);
  const double gib = static_cast<double>(p.totalGlobalMem) / (1 << 30);
  char memory[32];
  std::snprintf(memory, sizeof memory, "%.0f GiB", gib);
  return std::string(p.name) + " (device " + std::to_string(be.device) + ", sm_" + std::to_string(p.major) +
         std::to_string(p.minor) + ", " + std::to_string(p.multiProcessorCount) + " SMs, " + memory +
         "); CUDA runtime " + version_string(runtime) + ", driver " + version_string(driver) + ", cuBLAS " +
         std::to_string(blas / 10000) + "." + std::to_string(blas / 100 % 100) + "." + std::to_string(blas % 100);
}

// MOE_CUDA_F32_MATH: "f32" (default) keeps products of f32 operands exact f32; "tf32" and "bf16" let cuBLAS
// round f32 operands to TF32 or bf16 for the tensor cores (f32 accumulation; training an f32 model at
// tensor-core speed, at the precision of bf16 training). Returns the note for the description.
std::string choose_f32_math(moe_backend& be) {
  const char* v = std::getenv("MOE_CUDA_F32_MATH");
  const std::string mode = v && *v ? v : "f32";
  if (mode == "f32") return "f32 products in f32";
  if (mode == "tf32") {
    be.f32_compute = be.grouped_f32_compute = CUBLAS_COMPUTE_32F_FAST_TF32;
    return "f32 products on TF32 tensor cores (MOE_CUDA_F32_MATH=tf32)";
  }
  if (mode == "bf16") {
    be.f32_compute = CUBLAS_COMPUTE_32F_FAST_16BF;
    be.grouped_f32_compute = CUBLAS_COMPUTE_32F_FAST_TF32;
    return "f32 products on bf16 tensor cores, grouped ones on TF32 (MOE_CUDA_F32_MATH=bf16)";
  }
  invalid("MOE_CUDA_F32_MATH is '" + mode + "': it must be f32, tf32 or bf16");
}

void release(moe_backend* be) {
  if (!be) return;
  cudaSetDevice(be->device);
  if (be->stream) release_recording(*be);  // ends an unfinished capture first: a capturing stream cannot be waited for
  if (be->stream) cudaStreamSynchronize(be->stream);
  if (be->blas) cublasDestroy(be->blas);
  if (be->blas_workspace) cudaFree(be->blas_workspace);
  if (be->stream) cudaStreamDestroy(be->stream);
  // Blocks this instance freed stay in the device's pool until trimmed: hand the unused ones back.
  cudaMemPool_t pool = nullptr;
  if (cudaDeviceGetDefaultMemPool(&pool, be->device) == cudaSuccess) cudaMemPoolTrimTo(pool, 0);
  delete be;
}

}  // namespace

std::string usable_device_problem(int device) {
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    cudaGetLastError();
    return std::string("no CUDA device can be used: cudaGetDeviceCount says ") + cudaGetErrorName(status) + " (" +
           cudaGetErrorString(status) + ")";
  }
  if (device < 0 || device >= count)
    return "device " + std::to_string(device) + " does not exist (this machine has " + std::to_string(count) +
           " CUDA device" + (count == 1 ? "" : "s") + ")";
  int major = 0;
  if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess) {
    cudaGetLastError();
    return "the compute capability of device " + std::to_string(device) + " cannot be read";
  }
  // bf16 arithmetic and the PTX this plugin carries need compute capability 8.0 (Ampere) or later.
  if (major < 8)
    return "device " + std::to_string(device) + " has compute capability " + std::to_string(major) +
           ".x; this backend needs 8.0 or later";
  return "";
}

int32_t score() {
  const std::string problem = usable_device_problem(0);
  if (problem.empty()) return 10;  // above the CPU backend's 1: a usable GPU wins under "auto"
  log_message(MOE_LOG_INFO, problem);
  return 0;
}

moe_status cuda_create(const moe_backend_options* options, moe_backend** out) {
  try {
    if (!out) invalid("out (the new instance) is null");
    *out = nullptr;
    int32_t threads = 0, device = 0;
    if (MOE_STRUCT_HAS(options, moe_backend_options, num_threads)) threads = options->num_threads;
    if (MOE_STRUCT_HAS(options, moe_backend_options, device)) device = options->device;
    // The CUDA backend runs its work on the GPU; num_threads is checked like the CPU backend's so that an
    // options struct valid for one backend is valid for both.
    if (threads < 0 || threads > 4096)
      invalid("num_threads is " + std::to_string(threads) + ": it must be in [0, 4096] (0 means one per core)");
    const std::string problem = usable_device_problem(device);
    if (!problem.empty()) fail(device < 0 ? MOE_ERR_INVALID_ARGUMENT : MOE_ERR_UNSUPPORTED, problem);

    auto* be = new moe_backend;
    be->device = device;
    try {
      check_cuda(cudaSetDevice(device), "cudaSetDevice");
      check_cuda(cudaStreamCreateWithFlags(&be->stream, cudaStreamNonBlocking), "cudaStreamCreate");
      // Freed blocks stay in the device's pool for the next cudaMallocAsync instead of going back to the
      // driver at every synchronisation: the caching allocator under alloc/free and the ops' temporaries.
      cudaMemPool_t pool = nullptr;
      check_cuda(cudaDeviceGetDefaultMemPool(&pool, device), "cudaDeviceGetDefaultMemPool");
      uint64_t keep = UINT64_MAX;
      check_cuda(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep), "cudaMemPoolSetAttribute");
      check_cublas(cublasCreate(&be->blas), "cublasCreate");
      check_cublas(cublasSetStream(be->blas, be->stream), "cublasSetStream");
      // Plain f32 products stay f32 (no TF32): the op table promises f32 accuracy for f32 operands.
      check_cublas(cublasSetMathMode(be->blas, CUBLAS_DEFAULT_MATH), "cublasSetMathMode");
      check_cuda(cudaMalloc(&be->blas_workspace, kBlasWorkspaceBytes), "allocating cuBLAS's workspace");
      check_cublas(cublasSetWorkspace(be->blas, be->blas_workspace, kBlasWorkspaceBytes), "cublasSetWorkspace");
      be->description = describe(*be) + "; " + choose_f32_math(*be);
    } catch (...) {
      release(be);
      throw;
    }
    *out = be;
    return MOE_OK;
  } catch (...) {
    return status_of_current_exception();
  }
}

void cuda_destroy(moe_backend* be) {
  if (be && profiling_enabled()) profile_report();
  release(be);
}

const char* cuda_device_description(moe_backend* be) { return be ? be->description.c_str() : "cuda"; }

}  // namespace moe_cuda
