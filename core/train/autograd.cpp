#include "train/autograd.h"

#include "tensor/ops.h"

namespace moe::ad {

Var parameter(const Tensor& value, const std::shared_ptr<Tensor>& grad) { return Var{value, grad}; }

Var result(Tensor value, bool needs) {
  return Var{std::move(value), needs ? std::make_shared<Tensor>() : nullptr};
}

void accumulate(const Var& v, const Tensor& g) {
  if (!v.grad) return;
  Tensor& slot = *v.grad;
  if (!slot.defined()) {
    slot = g.view(v.value.shape());
    return;
  }
  ops::add(slot, g, slot);
}

void Tape::backward() {
  for (auto it = nodes_.rbegin(); it != nodes_.rend(); ++it) (*it)();
  nodes_.clear();
}

}  // namespace moe::ad
