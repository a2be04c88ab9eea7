// Reverse-mode automatic differentiation at the granularity of backend ops (shared/DESIGN.md,
// "Autograd"): each differentiable function (functions.h) computes its result and, when a tape is
// recording and a gradient is wanted, records a closure that calls the backends' backward ops.
// Tape::backward runs the closures in reverse. Frozen parameters and constants carry no gradient
// slot, so nothing downstream of them only is recorded.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "tensor/tensor.h"

namespace moe::ad {

// A value and the slot its gradient accumulates into (null: no gradient flows to it).
struct Var {
  Tensor value;
  std::shared_ptr<Tensor> grad;

  bool requires_grad() const { return grad != nullptr; }
};

// A value no gradient flows to (inputs, routing decisions, frozen weights).
inline Var constant(Tensor t) { return Var{std::move(t), nullptr}; }

// A trainable parameter whose gradient accumulates into `grad` (an f32 tensor of its shape, owned by
// the trainer); null `grad` makes it frozen.
Var parameter(const Tensor& value, const std::shared_ptr<Tensor>& grad);

class Tape {
 public:
  // Records a backward step; called by differentiable functions only when some input needs a gradient.
  void record(std::function<void()> backward) { nodes_.push_back(std::move(backward)); }
  // Runs every recorded step in reverse order, then forgets them (and the activations they held).
  void backward();
  void clear() { nodes_.clear(); }
  size_t size() const { return nodes_.size(); }

 private:
  std::vector<std::function<void()>> nodes_;
};

// A fresh result that needs a gradient when `needs` (any input needs one).
Var result(Tensor value, bool needs);

// Adds g into v's gradient: the first contribution is kept as is (so g must not be written
// afterwards, nor handed to a second accumulate: clone it), later ones are summed.
void accumulate(const Var& v, const Tensor& g);

// True when recording is on and one of the inputs needs a gradient.
inline bool recording(const Tape* tape, std::initializer_list<const Var*> inputs) {
  if (!tape) return false;
  for (const Var* v : inputs)
    if (v->requires_grad()) return true;
  return false;
}

}  // namespace moe::ad
