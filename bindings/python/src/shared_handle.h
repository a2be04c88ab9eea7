// A C handle that several Python threads may use while one of them closes it. Calls run with the GIL
// released, so close() cannot simply free the handle: it waits until every call that holds the handle
// has returned, and calls that start after it raise ValueError.
#pragma once

#include <pybind11/pybind11.h>

#include <mutex>
#include <shared_mutex>
#include <string>
#include <utility>

namespace moesdk {

template <typename T, void (*Free)(T*)>
class SharedHandle {
 public:
  // Holds the handle open for one call. Take it with the GIL released: close() may be waiting.
  class Use {
   public:
    Use(std::shared_lock<std::shared_mutex> lock, T* handle) : lock_(std::move(lock)), handle_(handle) {}
    T* get() const { return handle_; }

   private:
    std::shared_lock<std::shared_mutex> lock_;
    T* handle_;
  };

  SharedHandle(T* handle, std::string what) : handle_(handle), what_(std::move(what)) {}
  ~SharedHandle() { close(); }
  SharedHandle(const SharedHandle&) = delete;
  SharedHandle& operator=(const SharedHandle&) = delete;

  // Throws ValueError when the handle was closed.
  Use use() const {
    std::shared_lock lock(mutex_);
    if (!handle_) throw pybind11::value_error("the " + what_ + " is closed");
    return Use(std::move(lock), handle_);
  }

  // Frees the handle once running calls have returned; later calls raise. Idempotent.
  void close() {
    std::unique_lock lock(mutex_);
    Free(handle_);  // every moe_*_free accepts NULL
    handle_ = nullptr;
  }

  bool closed() const {
    std::shared_lock lock(mutex_);
    return handle_ == nullptr;
  }

 private:
  mutable std::shared_mutex mutex_;
  T* handle_;
  std::string what_;
};

}  // namespace moesdk
