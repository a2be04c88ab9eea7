// Training data for `moe train` / `moe finetune`: a UTF-8 text file (tokenised by the model's
// tokenizer, concatenated, cut into sequences) or a .safetensors file with an int64 `input_ids`
// tensor [sequences, tokens] and optionally int64 `labels`: [sequences, tokens] for the language
// model (-100 = ignored), [sequences] classes for classification, [sequences, 2] spans.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "moe/moe.hpp"

namespace cli {

struct Dataset {
  std::vector<int32_t> ids;     // [sequences, seq_len]
  std::vector<int32_t> labels;  // [sequences, label_width], or empty
  int64_t sequences = 0, seq_len = 0, label_width = 0;

  // The last `fraction` of the sequences as a separate evaluation set (at least one sequence each).
  Dataset split_off(double fraction);
};

Dataset load_dataset(const std::string& path, const moe::model& model, int64_t seq_len);

}  // namespace cli
