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

namespace {

// Ops that copy between host and device to check or plan (index_checks.h) have recording paths where a
// decode step needs them; the others cannot be recorded.
void refuse_host_copy_while_recording(const moe_backend& be) {
  if (recording(be))
    fail(MOE_ERR_UNSUPPORTED,
         "this op copies indices or launch plans between host and device, which a recorded step cannot do (it has "
         "no recording path; run it outside record_begin / record_end)");
}

}  // namespace

void download(moe_backend& be, void* dst, const void* src, size_t bytes) {
  refuse_host_copy_while_recording(be);
  check_cuda(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, be.stream), "cudaMemcpyAsync to the host");
  check_cuda(cudaStreamSynchronize(be.stream), "waiting for a copy to the host");
}

void upload(moe_backend& be, void* dst, const void* src, size_t bytes) {
  refuse_host_copy_while_recording(be);
  check_cuda(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, be.stream), "cudaMemcpyAsync from the host");
}

}  // namespace moe_cuda
