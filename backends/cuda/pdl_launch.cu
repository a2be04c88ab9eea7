#include <cstdlib>
#include <cstring>

#include "pdl_launch.cuh"

namespace moe_cuda {
namespace {

bool pdl_switched_off() {
  static const bool off = [] {
    const char* v = std::getenv("MOE_CUDA_PDL");
    return v && std::strcmp(v, "0") == 0;
  }();
  return off;
}

}  // namespace

int multiprocessors(moe_backend& be) {
  int count = 0;
  if (cudaDeviceGetAttribute(&count, cudaDevAttrMultiProcessorCount, be.device) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return count;
}

bool pdl_allowed(moe_backend& be) {
  if (!recording(be) || pdl_switched_off()) return false;
  int major = 0;
  if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, be.device) != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  if (major != 9) return false;
  cudaStreamCaptureStatus capturing = cudaStreamCaptureStatusNone;
  const cudaGraphNode_t* dependencies = nullptr;
  size_t count = 0;
  if (cudaStreamGetCaptureInfo(be.stream, &capturing, nullptr, nullptr, &dependencies, nullptr, &count) !=
          cudaSuccess ||
      capturing != cudaStreamCaptureStatusActive) {
    cudaGetLastError();
    return false;
  }
  if (count == 0) return false;
  for (size_t i = 0; i < count; ++i) {
    cudaGraphNodeType type{};
    if (cudaGraphNodeGetType(dependencies[i], &type) != cudaSuccess) {
      cudaGetLastError();
      return false;
    }
    if (type != cudaGraphNodeTypeKernel) return false;
  }
  return true;
}

}  // namespace moe_cuda
