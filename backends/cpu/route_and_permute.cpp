// route_and_permute (plugin ABI 1.5): a MoE layer's input norm, router product, routing and dispatch. On the
// CPU the ops have nothing to gain from running as one, so this is them in turn (the same results by
// construction); the op lets a recorded step hold them as one entry.
#include <string>

#include "backend_ops.h"
#include "errors.h"
#include "tensor_checks.h"

namespace moe_cpu {

moe_status cpu_route_and_permute(moe_backend* be, const moe_tensor* x, const moe_tensor* norm_weight, float eps,
                                 moe_tensor* h, const moe_tensor* router, int32_t sigmoid, const moe_tensor* bias,
                                 int32_t n_group, int32_t topk_group, int32_t top_k, int32_t normalize, float scaling,
                                 moe_tensor* logits, moe_tensor* ids, moe_tensor* weights, moe_tensor* x_sorted,
                                 moe_tensor* offsets, moe_tensor* source) {
  int64_t tokens = 0, experts = 0, dim = 0;
  const moe_status checked = guarded([&] {
    check_tensor(x, "x", MOE_DTYPE_F32, 2);
    check_float_tensor(router, "router", 2);
    tokens = x->shape[0];
    dim = x->shape[1];
    experts = router->shape[0];
    if (router->shape[1] != dim)
      invalid("router " + shape_string(*router) + " must be [experts, dim] for x " + shape_string(*x));
    if (experts > INT32_MAX) invalid("router " + shape_string(*router) + " has more experts than i32 ids can name");
    check_tensor(logits, "logits", MOE_DTYPE_F32, 2);
    if (logits->shape[0] != tokens || logits->shape[1] != experts)
      invalid("logits " + shape_string(*logits) + " must be [tokens, experts] = [" + std::to_string(tokens) + ", " +
              std::to_string(experts) + "]");
    if (!sigmoid && bias) invalid("bias is given, but the softmax router takes none (sigmoid = 0)");
    if (norm_weight) {
      check_tensor(h, "h", MOE_DTYPE_F32, 2);
      if (h->shape[0] != tokens || h->shape[1] != dim)
        invalid("h " + shape_string(*h) + " must be x's shape " + shape_string(*x));
      check_disjoint(h, "h", x, "x", "h is written while x is read");
    }
  });
  if (checked != MOE_OK) return checked;
  moe_status s = MOE_OK;
  if (norm_weight) {
    s = cpu_rmsnorm(be, x, norm_weight, eps, h);  // checks the norm's weight
    if (s != MOE_OK) return s;
  }
  const moe_tensor* normed = norm_weight ? h : x;
  s = cpu_gemm(be, 0, 1, tokens, experts, dim, 1.f, normed->data, MOE_DTYPE_F32, dim, router->data, router->dtype,
               dim, 0.f, logits->data, MOE_DTYPE_F32, experts);
  if (s != MOE_OK) return s;
  s = sigmoid ? cpu_route_sigmoid_group_topk(be, logits, bias, n_group, topk_group, top_k, normalize, scaling, ids,
                                             weights)
              : cpu_route_softmax_topk(be, logits, top_k, normalize, ids, weights);
  if (s != MOE_OK) return s;
  return cpu_moe_permute(be, normed, ids, static_cast<int32_t>(experts), x_sorted, offsets, source);
}

}  // namespace moe_cpu
