#include <algorithm>
#include <stdexcept>

#include "commands.h"
#include "safetensors_out.h"

namespace cli {

// Rows of different lengths are padded to the longest with zeros in the [rows, tokens, vocab] output;
// a `lengths` tensor is not written, the caller knows its rows.
int cmd_logits(Args& args) {
  std::string dir = args.value("model");
  if (dir.empty()) throw std::runtime_error("--model DIR is required");
  std::string out = args.value("out");
  if (out.empty()) throw std::runtime_error("--out FILE.safetensors is required");
  std::vector<std::vector<int32_t>> rows;
  for (const auto& v : args.values("ids")) rows.push_back(parse_ids(v, "ids"));
  if (rows.empty()) throw std::runtime_error("give at least one --ids 1,2,3");
  moe::context ctx = make_context(args);
  auto options = model_options(args);
  args.finish();

  moe::model m(ctx, dir, options);
  const int64_t vocab = m.describe().vocab_size;
  std::vector<float> packed = m.forward(rows);
  size_t longest = 0;
  for (const auto& r : rows) longest = std::max(longest, r.size());
  std::vector<float> padded(rows.size() * longest * vocab, 0.f);
  size_t offset = 0;
  for (size_t r = 0; r < rows.size(); ++r) {
    std::copy(packed.begin() + offset * vocab, packed.begin() + (offset + rows[r].size()) * vocab,
              padded.begin() + r * longest * vocab);
    offset += rows[r].size();
  }
  write_f32_safetensors(out, "logits", {static_cast<int64_t>(rows.size()), static_cast<int64_t>(longest), vocab},
                        padded);
  return 0;
}

}  // namespace cli
