// Model.generate (a callback per token) and Model.generate_iter (an iterator, see token_stream.cpp).
#include "generation.h"

#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <exception>

#include "errors.h"
#include "model.h"
#include "token_stream.h"
#include "utf8.h"

namespace py = pybind11;

namespace moesdk {

moe_generate_options GenerationRequest::options_for_call(moe_token_callback callback, void* user_data) const {
  moe_generate_options o = options;
  o.stop_ids = stop_ids.empty() ? nullptr : stop_ids.data();
  o.num_stop_ids = static_cast<int32_t>(stop_ids.size());
  o.callback = callback;
  o.user_data = user_data;
  return o;
}

GenerationRequest make_request(py::handle prompt, std::optional<int32_t> max_new_tokens,
                               std::optional<float> temperature, std::optional<int32_t> top_k,
                               std::optional<float> top_p, std::optional<uint64_t> seed,
                               std::optional<std::vector<int32_t>> stop_ids) {
  GenerationRequest r;
  auto ids = py::array_t<int32_t, py::array::c_style | py::array::forcecast>::ensure(prompt);
  if (!ids || ids.ndim() != 1) throw py::value_error("prompt must be a 1-D sequence of token ids");
  r.prompt.assign(ids.data(), ids.data() + ids.size());
  moe_generate_options_init(&r.options);
  if (max_new_tokens) r.options.max_new_tokens = *max_new_tokens;
  if (temperature) r.options.temperature = *temperature;
  if (top_k) r.options.top_k = *top_k;
  if (top_p) r.options.top_p = *top_p;
  if (seed) r.options.seed = *seed;
  if (stop_ids) r.stop_ids = std::move(*stop_ids);
  if (r.options.max_new_tokens < 0) throw py::value_error("max_new_tokens must be >= 0");
  return r;
}

namespace {

// The Python callback of one generate() call. An exception it raises stops generation and is raised
// again from generate() once the library has returned (it must not unwind through C).
struct CallbackState {
  py::function callback;
  std::exception_ptr error;

  static int32_t on_token(int32_t token, const char* text, void* user_data) {
    auto& self = *static_cast<CallbackState*>(user_data);
    py::gil_scoped_acquire gil;
    try {
      py::object stop = self.callback(token, text ? py::object(utf8_to_str(text)) : py::object(py::none()));
      return py::bool_(stop) ? 1 : 0;
    } catch (...) {
      self.error = std::current_exception();
      return 1;
    }
  }
};

py::array_t<int32_t> generate(const Model& model, py::handle prompt, std::optional<int32_t> max_new_tokens,
                              std::optional<float> temperature, std::optional<int32_t> top_k,
                              std::optional<float> top_p, std::optional<uint64_t> seed,
                              std::optional<std::vector<int32_t>> stop_ids, std::optional<py::function> callback) {
  auto request = make_request(prompt, max_new_tokens, temperature, top_k, top_p, seed, std::move(stop_ids));
  CallbackState state{callback ? std::move(*callback) : py::function(), nullptr};
  auto options = callback ? request.options_for_call(&CallbackState::on_token, &state)
                          : request.options_for_call(nullptr, nullptr);
  const int64_t capacity = request.options.max_new_tokens;
  py::array_t<int32_t> out(capacity);
  int32_t* dst = out.mutable_data();
  int64_t count = 0;
  std::exception_ptr failure;
  {
    py::gil_scoped_release nogil;
    try {
      auto use = model.handle.use();
      check(moe_generate(use.get(), request.prompt.data(), static_cast<int64_t>(request.prompt.size()), &options, dst,
                         capacity, &count));
    } catch (...) {
      failure = std::current_exception();  // raised below, with the GIL held again
    }
  }
  if (state.error) std::rethrow_exception(state.error);
  if (failure) std::rethrow_exception(failure);
  return out[py::slice(0, count, 1)].cast<py::array_t<int32_t>>();
}

}  // namespace

void bind_generation(py::class_<Model>& model) {
  model.def("generate", &generate, py::arg("prompt"), py::kw_only(), py::arg("max_new_tokens") = py::none(),
            py::arg("temperature") = py::none(), py::arg("top_k") = py::none(), py::arg("top_p") = py::none(),
            py::arg("seed") = py::none(), py::arg("stop_ids") = py::none(), py::arg("callback") = py::none(),
            R"doc(
Generates up to max_new_tokens (library default 64) after prompt and returns the new ids (int32).

Sampling: temperature 0 (default) is greedy; top_k, top_p and seed as usual; generation ends after any
of stop_ids. callback(token_id, text) runs after each token (text: the newly completed UTF-8 text, or
None when the model has no tokenizer); a truthy return value stops generation (the token is kept). An
exception in the callback stops generation and is raised here. The GIL is released between callbacks.
)doc");
  model.def(
      "generate_iter",
      [](py::object self, py::handle prompt, std::optional<int32_t> max_new_tokens, std::optional<float> temperature,
         std::optional<int32_t> top_k, std::optional<float> top_p, std::optional<uint64_t> seed,
         std::optional<std::vector<int32_t>> stop_ids) {
        return std::make_unique<TokenStream>(
            self, make_request(prompt, max_new_tokens, temperature, top_k, top_p, seed, std::move(stop_ids)));
      },
      py::arg("prompt"), py::kw_only(), py::arg("max_new_tokens") = py::none(), py::arg("temperature") = py::none(),
      py::arg("top_k") = py::none(), py::arg("top_p") = py::none(), py::arg("seed") = py::none(),
      py::arg("stop_ids") = py::none(), R"doc(
Like generate(), but an iterator of (token_id, text) tuples as the tokens are produced. Generation
runs on a worker thread; leaving the loop early (break, or close()) stops it after the current token.
)doc");
}

}  // namespace moesdk
