// Tensors: a dtype, a shape and a block of one backend's memory. Views share the block; copies
// between host and backend are explicit.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "moe/moe_plugin.h"

namespace moe {

class Backend;

using Shape = std::vector<int64_t>;

std::string shape_string(const Shape& shape);
int64_t shape_numel(const Shape& shape);

// Memory owned by one backend. Activation buffers go back to the backend's cache when released;
// long-lived buffers (weights) go back to the plugin directly.
class Buffer {
 public:
  Buffer(Backend& backend, size_t bytes, bool cached);
  ~Buffer();
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  Backend& backend() const { return backend_; }

 private:
  Backend& backend_;
  void* data_ = nullptr;
  size_t bytes_;
  bool cached_;
};

enum class Lifetime { kActivation, kPersistent };

class Tensor {
 public:
  Tensor() = default;
  static Tensor empty(Backend& backend, moe_dtype dtype, Shape shape, Lifetime lifetime = Lifetime::kActivation);
  static Tensor zeros(Backend& backend, moe_dtype dtype, Shape shape, Lifetime lifetime = Lifetime::kActivation);
  // A backend tensor holding a copy of host data (bytes must equal numel * dtype size).
  static Tensor from_host(Backend& backend, moe_dtype dtype, Shape shape, const void* data,
                          Lifetime lifetime = Lifetime::kActivation);

  bool defined() const { return buffer_ != nullptr; }
  moe_dtype dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  int64_t dim(int i) const { return shape_.at(i < 0 ? shape_.size() + i : i); }
  int ndim() const { return static_cast<int>(shape_.size()); }
  int64_t numel() const { return shape_numel(shape_); }
  size_t nbytes() const;
  void* data() const;
  Backend& backend() const { return buffer_->backend(); }

  // The descriptor passed to backend ops.
  moe_tensor ref() const;

  // Same memory, another shape with the same number of elements.
  Tensor view(Shape shape) const;
  // Rows [begin, end) of the first dimension.
  Tensor slice(int64_t begin, int64_t end) const;

  void copy_to_host(void* dst, size_t bytes) const;
  void copy_from_host(const void* src, size_t bytes);
  template <typename T>
  std::vector<T> to_vector() const {
    std::vector<T> v(nbytes() / sizeof(T));
    copy_to_host(v.data(), v.size() * sizeof(T));
    return v;
  }

 private:
  std::shared_ptr<Buffer> buffer_;
  size_t offset_ = 0;  // bytes into the buffer
  moe_dtype dtype_ = MOE_DTYPE_F32;
  Shape shape_;
};

}  // namespace moe
