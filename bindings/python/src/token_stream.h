// The iterator Model.generate_iter returns. moe_generate runs on a worker thread whose token callback
// queues each token, at most kAhead tokens ahead of the reader (then it waits: a reader that stops
// reading does not make the worker generate everything); __next__ waits (GIL released) for the next
// one. Closing the stream, or dropping it, makes the callback ask the library to stop and waits for
// the worker.
#pragma once

#include <pybind11/pybind11.h>

#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "generation.h"

namespace moesdk {

class Model;

class TokenStream {
 public:
  // model must be a moesdk.Model; the stream keeps it alive.
  TokenStream(pybind11::object model, GenerationRequest request);
  ~TokenStream();
  TokenStream(const TokenStream&) = delete;
  TokenStream& operator=(const TokenStream&) = delete;

  // (token_id, text or None); raises StopIteration at the end, or the error generation failed with.
  pybind11::tuple next();
  void close();

  static constexpr size_t kAhead = 8;

 private:
  struct Token {
    int32_t id;
    std::optional<std::string> text;
  };

  static int32_t on_token(int32_t token, const char* text, void* user_data);
  void run();  // the worker: never touches Python objects

  pybind11::object model_object_;
  const Model& model_;
  GenerationRequest request_;
  std::mutex mutex_;
  std::condition_variable ready_;  // a token was queued, or the worker finished
  std::condition_variable space_;  // a token was taken, or the stream is closing
  bool stop_ = false;
  std::deque<Token> tokens_;
  bool finished_ = false;
  std::exception_ptr error_;
  std::thread worker_;
};

void bind_token_stream(pybind11::module_& m);

}  // namespace moesdk
