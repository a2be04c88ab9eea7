#include "tensor/tensor.h"

#include <limits>

#include "base/dtype.h"
#include "base/error.h"
#include "tensor/backend.h"

namespace moe {

std::string shape_string(const Shape& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

int64_t shape_numel(const Shape& shape) {
  int64_t n = 1;
  for (auto d : shape) {
    if (d < 0 || (d > 0 && n > std::numeric_limits<int64_t>::max() / d))
      fail(MOE_ERR_INVALID_ARGUMENT, "tensor shape " + shape_string(shape) + " is negative or too large");
    n *= d;
  }
  return n;
}

Buffer::Buffer(Backend& backend, size_t bytes, bool cached) : backend_(backend), bytes_(bytes), cached_(cached) {
  if (cached_) {
    data_ = backend_.allocate(bytes_);
  } else {
    moe_status s = backend_.ops().alloc(backend_.handle(), bytes_ ? bytes_ : 1, &data_);
    if (s != MOE_OK || !data_)
      fail(MOE_ERR_OUT_OF_MEMORY, "backend '" + backend_.name() + "' could not allocate " + std::to_string(bytes_) +
                                      " bytes");
  }
}

Buffer::~Buffer() {
  if (cached_)
    backend_.release(data_, bytes_);
  else
    backend_.ops().free(backend_.handle(), data_);
}

Tensor Tensor::empty(Backend& backend, moe_dtype dtype, Shape shape, Lifetime lifetime) {
  if (shape.size() > MOE_MAX_DIMS)
    fail(MOE_ERR_INVALID_ARGUMENT, "tensor shape " + shape_string(shape) + " has more than 6 dimensions");
  size_t elem = dtype_size(dtype);
  if (elem == 0) fail(MOE_ERR_INVALID_ARGUMENT, "unknown dtype " + std::to_string(dtype));
  int64_t n = shape_numel(shape);
  if (n > std::numeric_limits<int64_t>::max() / static_cast<int64_t>(elem))
    fail(MOE_ERR_INVALID_ARGUMENT, "tensor shape " + shape_string(shape) + " is too large");
  Tensor t;
  t.buffer_ = std::make_shared<Buffer>(backend, static_cast<size_t>(n) * elem, lifetime == Lifetime::kActivation);
  t.dtype_ = dtype;
  t.shape_ = std::move(shape);
  return t;
}

Tensor Tensor::zeros(Backend& backend, moe_dtype dtype, Shape shape, Lifetime lifetime) {
  Tensor t = empty(backend, dtype, std::move(shape), lifetime);
  backend.check(backend.ops().memset_zero(backend.handle(), t.data(), t.nbytes()), "memset_zero");
  return t;
}

Tensor Tensor::from_host(Backend& backend, moe_dtype dtype, Shape shape, const void* data, Lifetime lifetime) {
  Tensor t = empty(backend, dtype, std::move(shape), lifetime);
  t.copy_from_host(data, t.nbytes());
  return t;
}

size_t Tensor::nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype_); }

void* Tensor::data() const { return buffer_ ? static_cast<char*>(buffer_->data()) + offset_ : nullptr; }

moe_tensor Tensor::ref() const {
  moe_tensor r{};
  r.data = data();
  r.dtype = dtype_;
  r.ndim = static_cast<int32_t>(shape_.size());
  for (size_t i = 0; i < shape_.size(); ++i) r.shape[i] = shape_[i];
  return r;
}

Tensor Tensor::view(Shape shape) const {
  if (shape_numel(shape) != numel())
    fail(MOE_ERR_INTERNAL, "view " + shape_string(shape) + " of a tensor " + shape_string(shape_));
  Tensor t = *this;
  t.shape_ = std::move(shape);
  return t;
}

Tensor Tensor::slice(int64_t begin, int64_t end) const {
  if (shape_.empty() || begin < 0 || end < begin || end > shape_[0])
    fail(MOE_ERR_INTERNAL, "slice [" + std::to_string(begin) + ", " + std::to_string(end) + ") of a tensor " +
                               shape_string(shape_));
  Tensor t = *this;
  int64_t row = shape_[0] ? numel() / shape_[0] : 0;
  t.offset_ += static_cast<size_t>(begin * row) * dtype_size(dtype_);
  t.shape_[0] = end - begin;
  return t;
}

void Tensor::copy_to_host(void* dst, size_t bytes) const {
  if (bytes > nbytes()) fail(MOE_ERR_INTERNAL, "copy_to_host of more bytes than the tensor holds");
  if (bytes == 0) return;
  Backend& be = backend();
  be.check(be.ops().copy_to_host(be.handle(), dst, data(), bytes), "copy_to_host");
}

void Tensor::copy_from_host(const void* src, size_t bytes) {
  if (bytes > nbytes()) fail(MOE_ERR_INTERNAL, "copy_from_host of more bytes than the tensor holds");
  if (bytes == 0) return;
  Backend& be = backend();
  be.check(be.ops().copy_from_host(be.handle(), data(), src, bytes), "copy_from_host");
}

}  // namespace moe
