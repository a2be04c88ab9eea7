// The reference fixtures transformers made (tests/reference/<name>/, see make_fixtures.py): the
// checkpoint directory and the tensors of reference.safetensors, read as host vectors.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "moe/moe.hpp"

namespace moe_test {

struct ReferenceFixture {
  std::string name;
  std::string directory;
  std::vector<int32_t> input_ids;      // packed ragged batch
  std::vector<int64_t> seq_lengths;
  std::vector<float> logits;           // [tokens, vocab], transformers in float64
  std::vector<int32_t> gen_prompt;
  std::vector<int32_t> gen_tokens;     // greedy, 32 new tokens
  int64_t vocab = 0;
  int64_t parameter_count = 0;        // elements of every named parameter (its adamw5.* tensors)

  std::vector<std::vector<int32_t>> sequences() const;
};

ReferenceFixture load_fixture(const std::string& name);
std::vector<std::string> fixture_names();

// The context every model test uses: the build tree's plugins only.
moe::context test_context();

// max |a - b| / max |b|
double relative_error(const std::vector<float>& a, const std::vector<float>& b);

}  // namespace moe_test
