// rmsnorm_linear (plugin ABI 1.5): a norm and the one product that reads its output.
//
// In a recorded decode step the norm was a kernel of its own (one block, a few microseconds of launch and
// dependency latency around almost no work) ahead of the product's small_m_gemm. While recording a few rows
// with the fused kernels switched on (fused_decode.h), the product's kernel applies the norm itself
// (small_m_gemm.cu: each block takes the rows' rstd as the rmsnorm op does, block 0 writes h), giving the
// two ops' results bit for bit. Everything else runs the rmsnorm op into h, then the gemm op on h.
#include <string>

#include "backend_instance.h"
#include "backend_ops.h"
#include "fused_decode.h"
#include "recording.h"
#include "small_m_gemm.h"
#include "tensor_checks.h"

namespace moe_cuda {
moe_status cuda_rmsnorm_linear(moe_backend* be, const moe_tensor* x, const moe_tensor* norm_weight, float eps,
                               const moe_tensor* w, moe_tensor* h, moe_tensor* y) {
  int64_t rows = 0, dim = 0, n = 0;
  bool fused = false;
  const moe_status checked = guarded(be, [&](moe_backend& b) {
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
    if (!(eps >= 0.f)) invalid("eps=" + std::to_string(eps) + " must be a non-negative number");
    fused = recording(b) && fused_decode_switched_on("rmsnorm_linear") &&
            try_small_m_rmsnorm_gemm(b, rows, n, dim, data_of<const float>(x), norm_weight->data,
                                     norm_weight->dtype == MOE_DTYPE_BF16, eps, data_of<float>(h), w->data, w->dtype,
                                     data_of<float>(y));
  });
  if (checked != MOE_OK || fused) return checked;
  // The two ops in turn; each reports its own failure.
  const moe_status s = cuda_rmsnorm(be, x, norm_weight, eps, h);
  if (s != MOE_OK) return s;
  return cuda_gemm(be, 0, 1, rows, n, dim, 1.f, h->data, MOE_DTYPE_F32, dim, w->data, w->dtype, dim, 0.f, y->data,
                   MOE_DTYPE_F32, n);
}

}  // namespace moe_cuda
