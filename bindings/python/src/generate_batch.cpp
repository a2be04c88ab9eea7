// Model.generate_batch: moe_generate_batch, several prompts generated together, with a per-row callback.
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <exception>

#include "errors.h"
#include "generation.h"
#include "model.h"
#include "token_ids.h"
#include "utf8.h"

namespace py = pybind11;

namespace moesdk {
namespace {

// The Python callback of one generate_batch() call: callback(row, token_id, text) returns None/False
// (the row goes on), True (the row ends) or one of GENERATE_CONTINUE/STOP_ROW/STOP_ALL. An exception
// it raises ends every row and is raised again from generate_batch() once the library has returned.
struct BatchCallback {
  py::function callback;
  std::exception_ptr error;

  static int32_t on_token(int64_t row, int32_t token, const char* text, void* user_data) {
    auto& self = *static_cast<BatchCallback*>(user_data);
    py::gil_scoped_acquire gil;
    try {
      py::object r = self.callback(row, token, text ? py::object(utf8_to_str(text)) : py::object(py::none()));
      if (r.is_none()) return MOE_GENERATE_CONTINUE;
      if (py::isinstance<py::bool_>(r)) return r.cast<bool>() ? MOE_GENERATE_STOP_ROW : MOE_GENERATE_CONTINUE;
      if (py::isinstance<py::int_>(r)) return r.cast<int32_t>();
      return PyObject_IsTrue(r.ptr()) ? MOE_GENERATE_STOP_ROW : MOE_GENERATE_CONTINUE;
    } catch (...) {
      self.error = std::current_exception();
      return MOE_GENERATE_STOP_ALL;
    }
  }
};

py::list generate_batch(const Model& model, py::handle prompts, py::handle lengths,
                        std::optional<int32_t> max_new_tokens, std::optional<float> temperature,
                        std::optional<int32_t> top_k, std::optional<float> top_p, std::optional<uint64_t> seed,
                        std::optional<std::vector<int32_t>> stop_ids, std::optional<py::function> callback) {
  PackedBatch batch = pack(prompts, lengths);
  // The options shared by every row (make_request checks them; its prompt is unused here).
  GenerationRequest request =
      make_request(py::array_t<int32_t>(0), max_new_tokens, temperature, top_k, top_p, seed, std::move(stop_ids));
  moe_generate_options options = request.options_for_call(nullptr, nullptr);
  const int64_t rows = batch.lengths.size(), width = request.options.max_new_tokens;
  py::array_t<int32_t> out({rows, width});
  py::array_t<int64_t> counts(rows);
  int32_t* out_ids = out.mutable_data();
  int64_t* out_counts = counts.mutable_data();
  BatchCallback state{callback ? std::move(*callback) : py::function(), nullptr};
  std::exception_ptr failure;
  {
    py::gil_scoped_release nogil;
    try {
      auto use = model.handle.use();
      check(moe_generate_batch(use.get(), batch.ids.data(), batch.lengths.data(), rows, &options,
                               callback ? &BatchCallback::on_token : nullptr, callback ? &state : nullptr, out_ids,
                               width, out_counts));
    } catch (...) {
      failure = std::current_exception();  // raised below, with the GIL held again
    }
  }
  if (state.error) std::rethrow_exception(state.error);
  if (failure) std::rethrow_exception(failure);
  py::list result;
  for (int64_t r = 0; r < rows; ++r) result.append(out[py::make_tuple(r, py::slice(0, out_counts[r], 1))]);
  return result;
}

}  // namespace

void bind_generate_batch(py::class_<Model>& model) {
  model.def("generate_batch", &generate_batch, py::arg("prompts"), py::arg("lengths") = py::none(), py::kw_only(),
            py::arg("max_new_tokens") = py::none(), py::arg("temperature") = py::none(), py::arg("top_k") = py::none(),
            py::arg("top_p") = py::none(), py::arg("seed") = py::none(), py::arg("stop_ids") = py::none(),
            py::arg("callback") = py::none(), R"doc(
Generates for several prompts together (moe_generate_batch): one forward for all prompts, then each
decode step runs every unfinished row through one forward. prompts as forward() takes tokens (a list of
sequences, 2-D rows, or packed ids with lengths). Returns a list with each row's new ids (int32 views of
one array). Options apply to every row as in generate(); row r samples with seed + r, so its tokens are
what generate() gives for that prompt with seed + r. callback(row, token_id, text) runs after each token
(rows in order within a step): None/False goes on, True ends that row, GENERATE_STOP_ALL ends every row.
An exception it raises ends every row and is raised here. The GIL is released between callbacks.
)doc");
}

}  // namespace moesdk
