// The iterator Model.generate_iter returns. moe_generate runs on a worker thread whose token callback
// queues each token, at most kAhead tokens ahead of the reader (then it waits: a reader that stops
// reading does not make the worker generate everything); __next__ waits (GIL released) for the next
// one. Closing the stream, or dropping it, makes the callback ask the library to stop and waits for
// the worker. Closing the model stops its streams too (the worker holds the model open, and would
// otherwise wait for a reader that waits for the model to close).
#pragma once

#include <pybind11/pybind11.h>

#include <condition_variable>
#include <deque>
#include <memory>
#include <exception>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "generation.h"

namespace moesdk {

class Model;

struct StreamToken {
  int32_t id;
  std::optional<std::string> text;
};

// What the reader and the worker share; the model holds it weakly to stop the worker when it closes.
struct StreamState {
  std::mutex mutex;
  std::condition_variable ready;  // a token was queued, or the worker finished
  std::condition_variable space;  // a token was taken, or the stream is stopping
  bool stop = false;
  std::deque<StreamToken> tokens;
  bool finished = false;
  std::exception_ptr error;

  // The worker's next callback asks the library to stop (the tokens queued so far stay readable).
  void request_stop();
};

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
  static int32_t on_token(int32_t token, const char* text, void* user_data);
  void run();  // the worker: never touches Python objects

  pybind11::object model_object_;
  Model& model_;
  GenerationRequest request_;
  std::shared_ptr<StreamState> state_;
  std::thread worker_;
};

void bind_token_stream(pybind11::module_& m);

}  // namespace moesdk
