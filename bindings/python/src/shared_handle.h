// A C handle that several Python threads may use while one of them closes it. Calls run with the GIL
// released, so close() cannot simply free the handle: it waits until every call that holds the handle
// has returned, and calls that start after it raise ValueError. A close() from inside one of the
// handle's own calls (a callback closing the object it was called from) would wait for itself: it
// raises RuntimeError instead.
#pragma once

#include <pybind11/pybind11.h>

#include <algorithm>
#include <mutex>
#include <shared_mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace moesdk {

template <typename T, void (*Free)(T*)>
class SharedHandle {
 public:
  // Holds the handle open for one call. Take it with the GIL released: close() may be waiting.
  class Use {
   public:
    Use(const SharedHandle& owner, std::shared_lock<std::shared_mutex> lock) : owner_(&owner), lock_(std::move(lock)) {
      owner_->enter();
    }
    Use(Use&& other) noexcept : owner_(std::exchange(other.owner_, nullptr)), lock_(std::move(other.lock_)) {}
    Use& operator=(Use&&) = delete;
    ~Use() {
      if (owner_) owner_->leave();
    }
    T* get() const { return owner_->handle_; }

   private:
    const SharedHandle* owner_;
    std::shared_lock<std::shared_mutex> lock_;
  };

  SharedHandle(T* handle, std::string what) : handle_(handle), what_(std::move(what)) {}
  ~SharedHandle() { free_when_unused(); }
  SharedHandle(const SharedHandle&) = delete;
  SharedHandle& operator=(const SharedHandle&) = delete;

  // Throws ValueError when the handle was closed.
  Use use() const {
    std::shared_lock lock(mutex_);
    if (!handle_) throw pybind11::value_error("the " + what_ + " is closed");
    return Use(*this, std::move(lock));
  }

  // Frees the handle once running calls have returned; later calls raise. Idempotent.
  void close() {
    {
      std::lock_guard users(users_mutex_);
      if (std::find(users_.begin(), users_.end(), std::this_thread::get_id()) != users_.end())
        throw std::runtime_error("the " + what_ + " cannot be closed from inside one of its own calls (a callback): "
                                 "it would wait for that call to return");
    }
    free_when_unused();
  }

  bool closed() const {
    std::shared_lock lock(mutex_);
    return handle_ == nullptr;
  }

 private:
  void free_when_unused() {
    std::unique_lock lock(mutex_);
    Free(handle_);  // every moe_*_free accepts NULL
    handle_ = nullptr;
  }
  void enter() const {
    std::lock_guard users(users_mutex_);
    users_.push_back(std::this_thread::get_id());
  }
  void leave() const {
    std::lock_guard users(users_mutex_);
    users_.erase(std::find(users_.begin(), users_.end(), std::this_thread::get_id()));
  }

  mutable std::shared_mutex mutex_;
  T* handle_;
  std::string what_;
  mutable std::mutex users_mutex_;
  mutable std::vector<std::thread::id> users_;  // the threads inside a call, once per call they are in
};

}  // namespace moesdk
