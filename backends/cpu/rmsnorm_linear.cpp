// rmsnorm_linear (plugin ABI 1.5): a norm and the one product that reads its output. On the CPU the two ops
// have nothing to gain from running as one (the norm's output is a few rows that stay in cache), so this is
// them in turn (the same results by construction); the op lets a recorded step hold them as one entry.
#include <string>

#include "backend_ops.h"
#include "errors.h"
#include "tensor_checks.h"

namespace moe_cpu {
moe_status cpu_rmsnorm_linear(moe_backend* be, const moe_tensor* x, const moe_tensor* norm_weight, float eps,
                              const moe_tensor* w, moe_tensor* h, moe_tensor* y) {
  int64_t rows = 0, dim = 0, n = 0;
  const moe_status checked = guarded([&] {
    check_tensor(x, "x", MOE_DTYPE_F32, 2);
    rows = x->shape[0];
    dim = x->shape[1];
    check_float_tensor(norm_weight, "norm_weight", 1);
    check_float_tensor(w, "w", 2);
    n = w->shape[0];
    if (norm_weight->shape[0] != dim || w->shape[1] != dim)
      invalid("x " + shape_string(*x) + ", norm_weight " + shape_string(*norm_weight) + " and w " + shape_string(*w) +
              " do not agree (norm_weight [dim], w [n, dim] for x [rows, dim])");
    check_tensor(h, "h", MOE_DTYPE_F32, 2);
    if (h->shape[0] != rows || h->shape[1] != dim)
      invalid("h " + shape_string(*h) + " must be x's shape " + shape_string(*x));
    check_tensor(y, "y", MOE_DTYPE_F32, 2);
    if (y->shape[0] != rows || y->shape[1] != n)
      invalid("y " + shape_string(*y) + " must be [rows, n] = [" + std::to_string(rows) + ", " + std::to_string(n) +
              "]");
    check_disjoint(h, "h", x, "x", "h is written while x is read");
    check_disjoint(y, "y", x, "x", "y is written while x is read");
    check_disjoint(h, "h", y, "y", "both are written");
  });
  if (checked != MOE_OK) return checked;
  const moe_status s = cpu_rmsnorm(be, x, norm_weight, eps, h);
  if (s != MOE_OK) return s;
  return cpu_gemm(be, 0, 1, rows, n, dim, 1.f, h->data, MOE_DTYPE_F32, dim, w->data, w->dtype, dim, 0.f, y->data,
                  MOE_DTYPE_F32, n);
}

}  // namespace moe_cpu
