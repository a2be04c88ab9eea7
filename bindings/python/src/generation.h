// What generate() and generate_iter() share: their keyword options turned into moe_generate_options.
#pragma once

#include <pybind11/pybind11.h>

#include <optional>
#include <vector>

#include "moe/moe.h"

namespace moesdk {

struct GenerationRequest {
  std::vector<int32_t> prompt;  // copied: the call may run on another thread while the caller goes on
  std::vector<int32_t> stop_ids;
  moe_generate_options options;  // stop_ids and callback are set by options_for_call()

  // Options ready for moe_generate, pointing into this request.
  moe_generate_options options_for_call(moe_token_callback callback, void* user_data) const;
};

// Options left as None keep moe_generate_options_init's defaults.
GenerationRequest make_request(pybind11::handle prompt, std::optional<int32_t> max_new_tokens,
                               std::optional<float> temperature, std::optional<int32_t> top_k,
                               std::optional<float> top_p, std::optional<uint64_t> seed,
                               std::optional<std::vector<int32_t>> stop_ids);

}  // namespace moesdk
