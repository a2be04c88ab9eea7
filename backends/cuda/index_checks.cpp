#include "index_checks.h"

#include <string>

#include "device_buffer.h"
#include "tensor_checks.h"

namespace moe_cuda {

std::vector<int32_t> token_indices(moe_backend& be, const moe_tensor* t, const char* name, int64_t tokens, int64_t low,
                                   int64_t high) {
  if (check_tensor(t, name, MOE_DTYPE_I32, -1) != tokens)
    invalid(std::string(name) + " " + shape_string(*t) + " must have one entry per token (" + std::to_string(tokens) +
            ")");
  std::vector<int32_t> v = download_vector<int32_t>(be, t->data, tokens);
  for (int64_t i = 0; i < tokens; ++i)
    if (v[i] < low || v[i] > high)
      invalid(std::string(name) + "[" + std::to_string(i) + "] = " + std::to_string(v[i]) + " is outside [" +
              std::to_string(low) + ", " + std::to_string(high) + "]");
  return v;
}

std::vector<int64_t> expert_offsets(moe_backend& be, const moe_tensor* offsets, int64_t experts, int64_t rows) {
  if (check_tensor(offsets, "offsets", MOE_DTYPE_I64, -1) != experts + 1)
    invalid("offsets " + shape_string(*offsets) + " must have experts + 1 = " + std::to_string(experts + 1) +
            " entries");
  std::vector<int64_t> off = download_vector<int64_t>(be, offsets->data, experts + 1);
  for (int64_t e = 0; e <= experts; ++e)
    if (off[e] < (e ? off[e - 1] : 0) || off[e] > rows)
      invalid("offsets[" + std::to_string(e) + "] = " + std::to_string(off[e]) +
              " breaks 0 <= offsets[0] <= ... <= offsets[experts] <= rows = " + std::to_string(rows));
  return off;
}

std::vector<int32_t> inverse_of_source(moe_backend& be, const moe_tensor* source, int64_t rows) {
  const std::vector<int32_t> src = download_vector<int32_t>(be, source->data, rows);
  std::vector<int32_t> row_of(static_cast<size_t>(rows), -1);
  for (int64_t r = 0; r < rows; ++r) {
    if (src[r] < 0 || src[r] >= rows)
      invalid("source[" + std::to_string(r) + "] = " + std::to_string(src[r]) + " is outside [0, " +
              std::to_string(rows) + ")");
    if (row_of[src[r]] >= 0)
      invalid("source[" + std::to_string(r) + "] = " + std::to_string(src[r]) + " appears twice (source[" +
              std::to_string(row_of[src[r]]) + "] too)");
    row_of[src[r]] = static_cast<int32_t>(r);
  }
  return row_of;
}

}  // namespace moe_cuda
