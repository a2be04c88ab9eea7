// Device memory: stream-ordered allocations from the device's memory pool (freed blocks are kept for
// reuse, see instance.cpp), copies and clears on the instance's stream. Copies to the host wait for
// the stream, since the host reads the result as soon as the call returns; they, and synchronize, then
// report a bad index that a replayed step met on the device (device_index_checks.h). While a step is
// recorded, alloc and free follow recording.h and nothing crosses to the host.
#include <string>

#include "backend_instance.h"
#include "backend_ops.h"
#include "device_index_checks.h"
#include "recording.h"
#include "tensor_checks.h"

namespace moe_cuda {
namespace {

void check_copy(const void* dst, const void* src, size_t bytes) {
  if (bytes == 0) return;
  check_pointer(dst, "dst");
  check_pointer(src, "src");
}

}  // namespace

moe_status cuda_alloc(moe_backend* be, size_t bytes, void** out) {
  return guarded(be, [&](moe_backend& b) {
    check_pointer(out, "out");
    *out = nullptr;
    if (recording(b)) {
      *out = alloc_while_recording(b, bytes);
      return;
    }
    // A zero-byte tensor still gets a distinct block.
    check_cuda(cudaMallocAsync(out, bytes ? bytes : 256, b.stream),
               ("allocating " + std::to_string(bytes) + " bytes of device memory").c_str());
  });
}

void cuda_free(moe_backend* be, void* ptr) {
  if (!ptr) return;
  guarded(be, [&](moe_backend& b) {
    if (recording(b))
      free_while_recording(b, ptr);
    else
      check_cuda(cudaFreeAsync(ptr, b.stream), "cudaFreeAsync");
  });
}

moe_status cuda_copy_from_host(moe_backend* be, void* dst, const void* src, size_t bytes) {
  return guarded(be, [&](moe_backend& b) {
    refuse_while_recording(b, "copy_from_host");
    check_copy(dst, src, bytes);
    if (bytes == 0) return;
    check_cuda(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, b.stream), "cudaMemcpyAsync from the host");
    // From pageable memory the copy has left the caller's buffer when cudaMemcpyAsync returns; from
    // page-locked memory the DMA reads it later, so wait: the caller may reuse its buffer at once.
    cudaPointerAttributes attributes{};
    check_cuda(cudaPointerGetAttributes(&attributes, src), "cudaPointerGetAttributes");
    if (attributes.type == cudaMemoryTypeHost)
      check_cuda(cudaStreamSynchronize(b.stream), "waiting for a copy from page-locked memory");
  });
}

moe_status cuda_copy_to_host(moe_backend* be, void* dst, const void* src, size_t bytes) {
  return guarded(be, [&](moe_backend& b) {
    refuse_while_recording(b, "copy_to_host");
    check_copy(dst, src, bytes);
    if (bytes == 0) {
      check_cuda(cudaStreamSynchronize(b.stream), "waiting for the device's work");
    } else {
      check_cuda(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, b.stream), "cudaMemcpyAsync to the host");
      check_cuda(cudaStreamSynchronize(b.stream), "waiting for the device's work before a copy to the host");
    }
    raise_device_index_error(b);
  });
}

moe_status cuda_copy(moe_backend* be, void* dst, const void* src, size_t bytes) {
  return guarded(be, [&](moe_backend& b) {
    check_copy(dst, src, bytes);
    if (bytes == 0) return;
    check_cuda(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, b.stream), "cudaMemcpyAsync on the device");
  });
}

moe_status cuda_memset_zero(moe_backend* be, void* dst, size_t bytes) {
  return guarded(be, [&](moe_backend& b) {
    if (bytes == 0) return;
    check_pointer(dst, "dst");
    check_cuda(cudaMemsetAsync(dst, 0, bytes, b.stream), "cudaMemsetAsync");
  });
}

moe_status cuda_synchronize(moe_backend* be) {
  return guarded(be, [&](moe_backend& b) {
    refuse_while_recording(b, "synchronize");
    check_cuda(cudaStreamSynchronize(b.stream), "waiting for the device's work (a failure here may come from any op enqueued since the last wait)");
    raise_device_index_error(b);
  });
}

}  // namespace moe_cuda
