// rope_kv_store (plugin ABI 1.5): a layer's new queries and keys rotated in place, and its keys and values
// stored into the KV cache. On the CPU the ops have nothing to gain from running as one, so this is them in
// turn (the same results by construction); the op lets a recorded step hold them as one entry.
#include "backend_ops.h"
#include "errors.h"
#include "tensor_checks.h"

namespace moe_cpu {

moe_status cpu_rope_kv_store(moe_backend* be, moe_tensor* q, moe_tensor* k, const moe_tensor* v,
                             const moe_tensor* positions, const moe_tensor* cos_table, const moe_tensor* sin_table,
                             int32_t rot_offset, int32_t rot_dim, int32_t layout, const moe_tensor* slot,
                             moe_tensor* k_cache, moe_tensor* v_cache) {
  const moe_status checked = guarded([&] {
    check_tensor(q, "q", MOE_DTYPE_F32, 3);
    check_tensor(k, "k", MOE_DTYPE_F32, 3);
    check_tensor(v, "v", MOE_DTYPE_F32, 3);
    check_disjoint(q, "q", k, "k", "both are rotated in place");
    check_disjoint(q, "q", v, "v", "q is rotated in place while v is read");
    check_disjoint(k, "k", v, "v", "k is rotated in place while v is read");
  });
  if (checked != MOE_OK) return checked;
  moe_status s = cpu_rope(be, q, positions, cos_table, sin_table, rot_offset, rot_dim, layout);
  if (s != MOE_OK) return s;
  s = cpu_rope(be, k, positions, cos_table, sin_table, rot_offset, rot_dim, layout);
  if (s != MOE_OK) return s;
  return cpu_kv_store(be, k, v, slot, positions, k_cache, v_cache);
}

}  // namespace moe_cpu
