// Temporaries of one op: stream-ordered allocations (cudaMallocAsync from the device's memory pool,
// which keeps freed blocks for reuse) released in stream order when the op returns, after the kernels
// that use them were enqueued.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "backend_instance.h"

namespace moe_cuda {

class DeviceBuffer {
 public:
  DeviceBuffer(moe_backend& be, size_t bytes);
  ~DeviceBuffer();
  DeviceBuffer(DeviceBuffer&& other) noexcept : be_(other.be_), data_(other.data_) { other.data_ = nullptr; }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  template <typename T>
  T* as() const {
    return static_cast<T*>(data_);
  }

 private:
  moe_backend& be_;
  void* data_ = nullptr;
};

// Host <-> device copies on the instance's stream. download waits for the stream (the host reads the
// result); upload returns once the source has been copied out of host memory.
void download(moe_backend& be, void* dst, const void* src, size_t bytes);
void upload(moe_backend& be, void* dst, const void* src, size_t bytes);

template <typename T>
std::vector<T> download_vector(moe_backend& be, const void* src, int64_t count) {
  std::vector<T> v(static_cast<size_t>(count));
  if (count > 0) download(be, v.data(), src, v.size() * sizeof(T));
  return v;
}

// `values` in a new temporary device buffer.
template <typename T>
DeviceBuffer upload_vector(moe_backend& be, const std::vector<T>& values) {
  DeviceBuffer buffer(be, values.size() * sizeof(T));
  if (!values.empty()) upload(be, buffer.as<void>(), values.data(), values.size() * sizeof(T));
  return buffer;
}

}  // namespace moe_cuda
