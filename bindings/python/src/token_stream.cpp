#include "token_stream.h"

#include <vector>

#include "errors.h"
#include "model.h"
#include "utf8.h"

namespace py = pybind11;

namespace moesdk {

void StreamState::request_stop() {
  {
    std::lock_guard lock(mutex);
    stop = true;
  }
  space.notify_one();
}

TokenStream::TokenStream(py::object model, GenerationRequest request)
    : model_object_(std::move(model)),
      model_(model_object_.cast<Model&>()),
      request_(std::move(request)),
      state_(std::make_shared<StreamState>()) {
  model_.add_stream(state_);  // ValueError if the model is closing
  worker_ = std::thread([this] { run(); });
}

TokenStream::~TokenStream() { close(); }

int32_t TokenStream::on_token(int32_t token, const char* text, void* user_data) {
  auto& s = *static_cast<StreamState*>(user_data);
  std::unique_lock lock(s.mutex);
  s.space.wait(lock, [&] { return s.tokens.size() < kAhead || s.stop; });
  if (s.stop) return 1;
  s.tokens.push_back({token, text ? std::optional<std::string>(text) : std::nullopt});
  s.ready.notify_one();
  return 0;
}

void TokenStream::run() {
  std::exception_ptr error;
  try {
    auto use = model_.handle.use();
    auto options = request_.options_for_call(&TokenStream::on_token, state_.get());
    std::vector<int32_t> out(static_cast<size_t>(request_.options.max_new_tokens));
    int64_t count = 0;
    check(moe_generate(use.get(), request_.prompt.data(), static_cast<int64_t>(request_.prompt.size()), &options,
                       out.data(), static_cast<int64_t>(out.size()), &count));
  } catch (...) {
    error = std::current_exception();
  }
  {
    std::lock_guard lock(state_->mutex);
    state_->error = error;
    state_->finished = true;
  }
  state_->ready.notify_one();
}

py::tuple TokenStream::next() {
  std::optional<StreamToken> token;
  std::exception_ptr error;
  {
    py::gil_scoped_release nogil;
    StreamState& s = *state_;
    std::unique_lock lock(s.mutex);
    s.ready.wait(lock, [&] { return !s.tokens.empty() || s.finished; });
    if (!s.tokens.empty()) {
      token = std::move(s.tokens.front());
      s.tokens.pop_front();
      s.space.notify_one();
    } else {
      std::swap(error, s.error);  // raised once; the stream is exhausted after it
    }
  }
  if (error) std::rethrow_exception(error);
  if (!token) throw py::stop_iteration();
  return py::make_tuple(token->id, token->text ? py::object(utf8_to_str(token->text->data(), token->text->size()))
                                               : py::object(py::none()));
}

void TokenStream::close() {
  state_->request_stop();
  if (worker_.joinable()) {
    py::gil_scoped_release nogil;  // the worker may be waiting for the GIL in a log callback
    worker_.join();
  }
}

void bind_token_stream(py::module_& m) {
  py::class_<TokenStream>(m, "TokenStream", "Iterator of (token_id, text) returned by Model.generate_iter().")
      .def_property_readonly_static("MAX_AHEAD", [](py::object) { return TokenStream::kAhead; },
                                    "How many tokens generation runs ahead of the reader, at most.")
      .def("__iter__", [](py::object self) { return self; })
      .def("__next__", &TokenStream::next)
      .def("close", &TokenStream::close, "Stops generation after the current token and waits for it to end.")
      .def("__enter__", [](py::object self) { return self; })
      .def("__exit__", [](TokenStream& self, py::args) { self.close(); });
}

}  // namespace moesdk
