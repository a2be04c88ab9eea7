#include "device_buffer.h"

#include <string>

namespace moe_cuda {

DeviceBuffer::DeviceBuffer(moe_backend& be, size_t bytes) : be_(be) {
  // A zero-byte request still gets a distinct block, so that every buffer has an address.
  check_cuda(cudaMallocAsync(&data_, bytes ? bytes : 256, be.stream),
             ("allocating a temporary of " + std::to_string(bytes) + " bytes").c_str());
}

DeviceBuffer::~DeviceBuffer() {
  if (!data_) return;  // moved from
  const cudaError_t status = cudaFreeAsync(data_, be_.stream);
  if (status != cudaSuccess)
    log_message(MOE_LOG_WARN, std::string("cudaFreeAsync of a temporary failed: ") + cudaGetErrorString(status));
}

void download(moe_backend& be, void* dst, const void* src, size_t bytes) {
  check_cuda(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, be.stream), "cudaMemcpyAsync to the host");
  check_cuda(cudaStreamSynchronize(be.stream), "waiting for a copy to the host");
}

void upload(moe_backend& be, void* dst, const void* src, size_t bytes) {
  check_cuda(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, be.stream), "cudaMemcpyAsync from the host");
}

}  // namespace moe_cuda
