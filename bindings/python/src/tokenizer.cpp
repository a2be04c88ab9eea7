#include "tokenizer.h"

#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <optional>
#include <string>

#include "errors.h"
#include "model.h"
#include "utf8.h"

namespace py = pybind11;

namespace moesdk {

Tokenizer::Tokenizer(moe_tokenizer* owned, std::shared_ptr<LogSink> log_sink)
    : owned_(std::make_unique<SharedHandle<moe_tokenizer, moe_tokenizer_free>>(owned, "Tokenizer")),
      log_sink_(std::move(log_sink)) {}

std::unique_ptr<Tokenizer> Tokenizer::of_model(py::object model) {
  std::unique_ptr<Tokenizer> t(new Tokenizer());
  t->model_ = &model.cast<const Model&>();
  t->model_object_ = std::move(model);
  t->with([](const moe_tokenizer*) {});  // NotFoundError now if the model has no tokenizer
  return t;
}

template <typename Use>
void Tokenizer::with(Use&& use) const {
  if (closed_) throw py::value_error("the Tokenizer is closed");
  if (owned_) {
    auto held = owned_->use();
    use(held.get());
    return;
  }
  auto held = model_->handle.use();
  const moe_tokenizer* tok = nullptr;
  check(moe_model_tokenizer(held.get(), &tok));
  use(tok);
}

void Tokenizer::close() {
  closed_ = true;
  if (owned_) owned_->close();
}

namespace {

std::unique_ptr<Tokenizer> load(const Context& ctx, const std::string& path, std::optional<std::string> config_path) {
  moe_tokenizer* raw = nullptr;
  {
    py::gil_scoped_release nogil;
    auto use = ctx.handle.use();
    check(moe_tokenizer_load(use.get(), path.c_str(), config_path ? config_path->c_str() : nullptr, &raw));
  }
  return std::make_unique<Tokenizer>(raw, ctx.log_sink);
}

py::array_t<int32_t> encode(const Tokenizer& tokenizer, const std::string& text, bool add_special) {
  std::vector<int32_t> ids;
  {
    py::gil_scoped_release nogil;
    tokenizer.with([&](const moe_tokenizer* tok) {
      int64_t count = 0;
      check(moe_tokenize(tok, text.data(), text.size(), add_special ? 1 : 0, nullptr, 0, &count));
      ids.resize(static_cast<size_t>(count));
      check(moe_tokenize(tok, text.data(), text.size(), add_special ? 1 : 0, ids.data(), count, &count));
      ids.resize(static_cast<size_t>(count));
    });
  }
  return py::array_t<int32_t>(static_cast<py::ssize_t>(ids.size()), ids.data());
}

py::str decode(const Tokenizer& tokenizer, py::handle ids_like, bool skip_special) {
  auto ids = py::array_t<int32_t, py::array::c_style | py::array::forcecast>::ensure(ids_like);
  if (!ids || ids.ndim() != 1) throw py::value_error("ids must be a 1-D sequence of token ids");
  std::string text;
  {
    py::gil_scoped_release nogil;
    tokenizer.with([&](const moe_tokenizer* tok) {
      size_t length = 0;
      check(moe_detokenize(tok, ids.data(), ids.size(), skip_special ? 1 : 0, nullptr, 0, &length));
      text.resize(length + 1);  // + the NUL the library writes
      check(moe_detokenize(tok, ids.data(), ids.size(), skip_special ? 1 : 0, text.data(), text.size(), &length));
      text.resize(length);
    });
  }
  return utf8_to_str(text.data(), text.size());
}

}  // namespace

void bind_tokenizer(py::module_& m) {
  py::class_<Tokenizer>(m, "Tokenizer", R"doc(
A Hugging Face tokenizer.json (with an optional tokenizer_config.json for BOS/EOS) loaded through the
text modality plugin, or the one a model directory came with (Model.tokenizer).
)doc")
      .def(py::init(&load), py::arg("context"), py::arg("path"), py::arg("config_path") = py::none())
      .def("encode", &encode, py::arg("text"), py::arg("add_special") = false,
           "Token ids (int32) of UTF-8 text; add_special applies the BOS/EOS post-processing.")
      .def("decode", &decode, py::arg("ids"), py::arg("skip_special") = false, "The text of token ids.")
      .def("close", [](Tokenizer& self) {
        py::gil_scoped_release nogil;
        self.close();
      })
      .def("__enter__", [](py::object self) { return self; })
      .def("__exit__", [](Tokenizer& self, py::args) {
        py::gil_scoped_release nogil;
        self.close();
      });
}

}  // namespace moesdk
