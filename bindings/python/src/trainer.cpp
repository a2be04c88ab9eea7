// moesdk.Trainer over moe_trainer_*: step/evaluate on numpy batches, train over a dataset with a
// progress callback, save/resume, LoRA merge. Every call releases the GIL while the library works.
#include "trainer.h"

#include <pybind11/numpy.h>

#include <cstring>
#include <exception>
#include <optional>
#include <string>
#include <thread>

#include "errors.h"
#include "moesdk_trainer_fields.h"
#include "token_ids.h"
#include "trainer_options.h"

namespace py = pybind11;

namespace moesdk {

Trainer::Trainer(py::object model_ref, moe_trainer* raw, int32_t task_)
    : model_object(std::move(model_ref)),
      model(model_object.cast<Model&>()),
      handle(std::make_shared<TrainerHandle>(raw, "Trainer")),
      task(task_) {}

namespace {

moe_train_stats empty_stats() {
  moe_train_stats s{};
  s.struct_size = sizeof s;
  return s;
}

std::string shape_of(const py::array& a) {
  std::string s = "(";
  for (py::ssize_t i = 0; i < a.ndim(); ++i) s += (i ? ", " : "") + std::to_string(a.shape(i));
  return s + (a.ndim() == 1 ? ",)" : ")");
}

// ids and labels as moe_trainer_step/evaluate/train read them: `rows` sequences of `seq_len` ids and
// the labels the task needs. Shapes are checked here because the library reads as many labels as the
// shapes say, past the end of a short array.
struct Batch {
  IdArray ids;
  std::optional<IdArray> labels;
  int64_t rows = 0, seq_len = 0;

  const int32_t* label_data() const { return labels ? labels->data() : nullptr; }
};

Batch batch_of(const Trainer& trainer, py::handle ids, py::handle labels) {
  Batch b;
  b.ids = to_ids(ids, "token ids");
  if (b.ids.ndim() == 2) {
    b.rows = b.ids.shape(0);
    b.seq_len = b.ids.shape(1);
  } else if (b.ids.ndim() == 1) {  // one sequence
    b.rows = 1;
    b.seq_len = b.ids.shape(0);
  } else {
    throw py::value_error("ids must be 2-D [sequences, seq_len] (or 1-D: one sequence), not of shape " + shape_of(b.ids));
  }
  if (labels.is_none()) return b;
  b.labels = to_ids(labels, "labels");
  const IdArray& l = *b.labels;
  bool ok;
  std::string expected;
  switch (trainer.task) {
    case MOE_TASK_SEQUENCE_CLASSIFICATION:
      ok = l.ndim() == 1 && l.shape(0) == b.rows;
      expected = "(" + std::to_string(b.rows) + ",): one class per sequence";
      break;
    case MOE_TASK_SPAN_EXTRACTION:
      ok = l.ndim() == 2 && l.shape(0) == b.rows && l.shape(1) == 2;
      expected = "(" + std::to_string(b.rows) + ", 2): start and end token per sequence";
      break;
    default:  // causal LM: a label per token, shaped like ids
      ok = l.ndim() == b.ids.ndim() && l.size() == b.ids.size() && (l.ndim() == 1 || l.shape(1) == b.seq_len);
      expected = shape_of(b.ids) + ": a label per token, like ids";
  }
  if (!ok) throw py::value_error("labels must have shape " + expected + ", not " + shape_of(l));
  return b;
}

// Runs call(moe_trainer*) with the GIL released, one call at a time per trainer, while neither the
// trainer nor its model can be freed.
template <typename Call>
void with_trainer(Trainer& t, Call&& call) {
  py::gil_scoped_release nogil;
  std::lock_guard turn(t.one_call);
  auto trainer = t.handle->use();  // first: a trainer whose model was closed reports itself closed
  auto model = t.model.handle.use();
  call(trainer.get());
}

moe_train_stats step(Trainer& t, py::handle ids, py::handle labels) {
  Batch b = batch_of(t, ids, labels);
  moe_train_stats s = empty_stats();
  with_trainer(t, [&](moe_trainer* raw) {
    check(moe_trainer_step(raw, b.ids.data(), b.label_data(), b.rows, b.seq_len, &s));
  });
  return s;
}

moe_train_stats evaluate(Trainer& t, py::handle ids, py::handle labels) {
  Batch b = batch_of(t, ids, labels);
  moe_train_stats s = empty_stats();
  with_trainer(t, [&](moe_trainer* raw) {
    check(moe_trainer_evaluate(raw, b.ids.data(), b.label_data(), b.rows, b.seq_len, &s));
  });
  return s;
}

// The progress callback of one train() call. It also lets Ctrl-C stop training between steps (the GIL
// is released while steps run, so Python sees the signal only here). What the Python callback raises
// stops training and is raised again from train() once the library has returned.
struct Progress {
  py::object callback;  // None: no user callback
  std::exception_ptr error;
  std::optional<moe_train_stats> last;

  static int32_t on_step(const moe_train_stats* stats, void* user_data) {
    auto& self = *static_cast<Progress*>(user_data);
    py::gil_scoped_acquire gil;
    moe_train_stats copy = empty_stats();  // the library's struct may be shorter or longer than ours
    std::memcpy(&copy, stats, std::min<size_t>(stats->struct_size, sizeof copy));
    copy.struct_size = sizeof copy;
    self.last = copy;
    try {
      if (PyErr_CheckSignals() != 0) throw py::error_already_set();
      if (self.callback.is_none()) return 0;
      return py::bool_(self.callback(copy)) ? 1 : 0;
    } catch (...) {
      self.error = std::current_exception();
      return 1;
    }
  }
};

py::object train(Trainer& t, py::handle ids, py::handle labels, int64_t batch_size, int64_t until_step, bool shuffle,
                 py::object progress) {
  Batch b = batch_of(t, ids, labels);
  Progress state{std::move(progress), nullptr, std::nullopt};
  std::exception_ptr failure;
  try {
    with_trainer(t, [&](moe_trainer* raw) {
      check(moe_trainer_train(raw, b.ids.data(), b.label_data(), b.rows, b.seq_len, batch_size, until_step,
                              shuffle ? 1 : 0, &Progress::on_step, &state));
    });
  } catch (const LibraryError&) {
    failure = std::current_exception();
  }
  if (state.error) std::rethrow_exception(state.error);  // the callback's own exception, not CancelledError
  if (failure) std::rethrow_exception(failure);
  return state.last ? py::cast(*state.last) : py::none();
}

// (counts int64 [moe_layers, experts], layers int32 [moe_layers]): moe_trainer_expert_load.
py::tuple expert_load(Trainer& t) {
  int64_t rows = 0, experts = 0;
  with_trainer(t, [&](moe_trainer* raw) { check(moe_trainer_expert_load(raw, nullptr, 0, nullptr, &rows, &experts)); });
  py::array_t<int64_t> counts({rows, experts});
  py::array_t<int32_t> layers(rows);
  int64_t* c = counts.mutable_data();
  int32_t* l = layers.mutable_data();
  with_trainer(t, [&](moe_trainer* raw) { check(moe_trainer_expert_load(raw, c, rows * experts, l, &rows, &experts)); });
  return py::make_tuple(counts, layers);
}

std::unique_ptr<Trainer> make_trainer(py::object model_object, const py::kwargs& kwargs) {
  Model& model = model_object.cast<Model&>();
  TrainerOptions options;
  read_trainer_options(kwargs, options);
  std::unique_ptr<Trainer> trainer;
  py::gil_scoped_release nogil;
  auto use = model.handle.use();  // held until the model knows the trainer: close() cannot free it meanwhile
  moe_trainer* raw = nullptr;
  check(moe_trainer_create(use.get(), &options.c, &raw));
  {
    py::gil_scoped_acquire gil;  // Trainer holds a Python reference to the model
    trainer = std::make_unique<Trainer>(model_object, raw, options.c.task);
    try {
      model.add_trainer(trainer->handle);
    } catch (...) {
      trainer.reset();  // freed now, while the model cannot be
      throw;
    }
  }
  return trainer;
}

void close_trainer(Trainer& t) {
  py::gil_scoped_release nogil;
  t.handle->close();
}

}  // namespace

void bind_trainer(py::module_& m) {
  bind_trainer_constants(m);

  py::class_<moe_train_stats> stats(m, "TrainStats", R"doc(
What one step reported (moe_train_stats): loss (mean over labelled tokens), aux_loss (router losses,
coefficients applied), grad_norm (before clipping), lr, tokens, step (optimizer steps so far), skipped
(a non-finite value skipped the update), expert_balance (1 = perfect), accuracy (task heads).
)doc");
#define MOESDK_STATS_FIELD(type, field, camel) \
  stats.def_property_readonly(#field, [](const moe_train_stats& s) { return static_cast<type>(s.field); });
  MOESDK_TRAIN_STATS_FIELDS(MOESDK_STATS_FIELD)
#undef MOESDK_STATS_FIELD
  stats.def("as_dict", [](const moe_train_stats& s) {
    py::dict d;
#define MOESDK_STATS_ITEM(type, field, camel) d[#field] = static_cast<type>(s.field);
    MOESDK_TRAIN_STATS_FIELDS(MOESDK_STATS_ITEM)
#undef MOESDK_STATS_ITEM
    return d;
  });
  stats.def("__repr__", [](const moe_train_stats& s) {
    return "TrainStats(step=" + std::to_string(s.step) + ", loss=" + std::string(py::str(py::float_(s.loss))) +
           ", lr=" + std::string(py::str(py::float_(s.lr))) + ", tokens=" + std::to_string(s.tokens) + ")";
  });

  py::class_<Trainer>(m, "Trainer", R"doc(
Trains or fine-tunes a Model in place (moe_trainer). Options are keywords named as the fields of
moe_trainer_options in moe.h (Trainer.default_options() lists them with their defaults), e.g.

    Trainer(model, lr=3e-3, schedule="cosine", warmup_steps=10, total_steps=200, aux_loss_coef=0.01,
            freeze_layers_below=1, freeze_experts=[0], freeze_patterns=[r"lm_head"],
            lora_rank=8, lora_alpha=16, task="sequence_classification", num_labels=3)

schedule, gating, nan_policy and task take moe.h's values (SCHEDULE_COSINE, TASK_SPAN_EXTRACTION, ...)
or their names ("cosine", "span_extraction", ...). Full training needs f32 weights; LoRA also runs on
bf16. While a trainer call runs, no other call may use the same model from another thread (the
weights change in place). Calls from several threads on one trainer take turns. Closing the model
closes its trainers.
)doc")
      .def(py::init(&make_trainer), py::arg("model"))
      .def_static("default_options", &default_trainer_options, "The options and their defaults, as a dict.")
      .def("step", &step, py::arg("ids"), py::arg("labels") = py::none(), R"doc(
One micro-batch: ids int32 [batch, seq_len] (read in place when int32 and C-contiguous; 1-D is one
sequence). labels by task: causal LM None (the ids) or [batch, seq_len] (ignore_index ignored); sequence
classification [batch] classes; span extraction [batch, 2] start and end tokens. The optimizer steps
every grad_accumulation micro-batches. Returns TrainStats.
)doc")
      .def("evaluate", &evaluate, py::arg("ids"), py::arg("labels") = py::none(),
           "The loss of a batch (shaped as for step) without gradients or updates. Returns TrainStats.")
      .def("train", &train, py::arg("ids"), py::arg("labels") = py::none(), py::kw_only(), py::arg("batch_size"),
           py::arg("until_step"), py::arg("shuffle") = true, py::arg("progress") = py::none(), R"doc(
Trains until the trainer has taken until_step optimizer steps, on batches of batch_size sequences of
the dataset ids [num_sequences, seq_len] (labels shaped as for step, with num_sequences rows), in order
or shuffled per epoch from the trainer's seed. progress(stats) runs after each optimizer step; a truthy
return value stops training with CancelledError (the steps taken are kept), and an exception it raises
stops training and is raised here. Ctrl-C stops it between steps. Returns the last step's TrainStats
(None when no step was needed).
)doc")
      .def("save", [](Trainer& t, const std::string& directory) {
        with_trainer(t, [&](moe_trainer* raw) { check(moe_trainer_save(raw, directory.c_str())); });
      }, py::arg("directory"), "A checkpoint directory: the model as Model.save writes it plus the optimizer state.")
      .def("resume", [](Trainer& t, const std::string& directory) {
        with_trainer(t, [&](moe_trainer* raw) { check(moe_trainer_resume(raw, directory.c_str())); });
      }, py::arg("directory"), R"doc(
Continues from a checkpoint that save() wrote: the trainer's model must have been loaded from that
directory and the options must match; the run then continues exactly as if it had not stopped.
)doc")
      .def("merge_lora", [](Trainer& t) {
        with_trainer(t, [&](moe_trainer* raw) { check(moe_trainer_merge_lora(raw)); });
      }, "Adds the LoRA adapters into their weights (f32 weights only) and stops training them.")
      .def("expert_load", &expert_load, R"doc(
Tokens the routers assigned to each routed expert during training steps, summed since training began
(kept across save and resume; before any capacity drop; a token counts once per chosen expert):
(counts int64 [moe_layers, experts], layers int32 [moe_layers], the model layer of each row).
)doc")
      .def_property_readonly("model", [](const Trainer& t) { return t.model_object; }, "The model it trains.")
      .def_property_readonly("task", [](const Trainer& t) { return t.task; }, "TASK_CAUSAL_LM, ... (what labels hold)")
      .def("close", &close_trainer, "Frees the trainer now (after a call running on another thread returns).")
      .def_property_readonly("closed", [](const Trainer& t) { return t.handle->closed(); })
      .def("__enter__", [](py::object self) { return self; })
      .def("__exit__", [](Trainer& t, py::args) { close_trainer(t); });
}

}  // namespace moesdk
