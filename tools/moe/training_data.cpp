#include "training_data.h"

#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>

namespace cli {
namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("--data: cannot read " + path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// An int64 tensor of a .safetensors image, bounds-checked, as int32 (token ids and labels fit).
std::vector<int32_t> int64_tensor(const std::string& bytes, const nlohmann::json& header, size_t data_start,
                                  const std::string& name, const std::string& path, std::vector<int64_t>* shape) {
  if (!header.contains(name)) return {};
  const auto& t = header.at(name);
  if (t.value("dtype", "") != "I64")
    throw std::runtime_error(path + ": tensor '" + name + "' must be I64, is " + t.value("dtype", "?"));
  *shape = t.at("shape").get<std::vector<int64_t>>();
  auto offsets = t.at("data_offsets").get<std::vector<uint64_t>>();
  uint64_t count = 1;
  bool sane = (shape->size() == 1 || shape->size() == 2) && offsets.size() == 2 && offsets[1] >= offsets[0];
  for (int64_t d : *shape) {
    sane = sane && d >= 1 && d < (int64_t{1} << 31);
    count *= sane ? static_cast<uint64_t>(d) : 0;
  }
  if (!sane || data_start + offsets[1] > bytes.size() || offsets[1] - offsets[0] != count * 8)
    throw std::runtime_error(path + ": tensor '" + name + "' must be 1- or 2-D with its bytes inside the file");
  std::vector<int32_t> out(static_cast<size_t>(count));
  for (size_t i = 0; i < out.size(); ++i) {
    int64_t v;
    std::memcpy(&v, bytes.data() + data_start + offsets[0] + i * 8, 8);
    if (v < INT32_MIN || v > INT32_MAX) throw std::runtime_error(path + ": tensor '" + name + "' holds " + std::to_string(v));
    out[i] = static_cast<int32_t>(v);
  }
  return out;
}

Dataset load_safetensors(const std::string& path) {
  std::string bytes = read_file(path);
  if (bytes.size() < 8) throw std::runtime_error(path + ": too short for a safetensors file");
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= static_cast<uint64_t>(static_cast<unsigned char>(bytes[i])) << (8 * i);
  if (n > bytes.size() - 8) throw std::runtime_error(path + ": header length beyond the end of the file");
  nlohmann::json header = nlohmann::json::parse(bytes.substr(8, n), nullptr, false);
  if (header.is_discarded() || !header.is_object()) throw std::runtime_error(path + ": the header is not a JSON object");
  Dataset d;
  std::vector<int64_t> shape, label_shape;
  try {
    d.ids = int64_tensor(bytes, header, 8 + n, "input_ids", path, &shape);
    d.labels = int64_tensor(bytes, header, 8 + n, "labels", path, &label_shape);
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(path + ": malformed tensor entry: " + e.what());
  }
  if (d.ids.empty()) throw std::runtime_error(path + ": no tensor named 'input_ids'");
  if (shape.size() != 2 || shape[1] < 2) throw std::runtime_error(path + ": 'input_ids' must be [sequences, tokens >= 2]");
  if (!d.labels.empty() && label_shape[0] != shape[0])
    throw std::runtime_error(path + ": 'labels' must have one row per sequence of 'input_ids'");
  d.sequences = shape[0];
  d.seq_len = shape[1];
  d.label_width = d.labels.empty() ? 0 : label_shape.size() == 1 ? 1 : label_shape[1];
  return d;
}

Dataset load_text(const std::string& path, const moe::model& model, int64_t seq_len) {
  std::string text = read_file(path);
  // A text corpus needs the model's tokenizer; say which flag gives one rather than how the model was made.
  moe::tokenizer tok = [&] {
    try {
      return model.get_tokenizer();
    } catch (const moe::error& e) {
      throw std::runtime_error("--data: " + path + " is text, and the model has no tokenizer to encode it (" + e.what() +
                               "): give --tokenizer tokenizer.json with --config, or a --model directory holding one, "
                               "or pre-tokenised .safetensors data");
    }
  }();
  // Encode paragraph by paragraph (bounded memory per call, same ids: pre-tokenisation splits there).
  std::vector<int32_t> all;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find("\n\n", start);
    end = end == std::string::npos ? text.size() : end + 2;
    auto ids = tok.encode(text.substr(start, end - start));
    all.insert(all.end(), ids.begin(), ids.end());
    start = end;
  }
  Dataset d;
  d.seq_len = seq_len;
  d.sequences = static_cast<int64_t>(all.size()) / seq_len;
  if (d.sequences < 1)
    throw std::runtime_error("--data: " + path + " holds " + std::to_string(all.size()) + " tokens, fewer than one sequence of " +
                             std::to_string(seq_len));
  d.ids.assign(all.begin(), all.begin() + d.sequences * seq_len);
  return d;
}

}  // namespace

Dataset Dataset::split_off(double fraction) {
  Dataset eval;
  if (fraction <= 0) return eval;
  int64_t n = std::max<int64_t>(1, static_cast<int64_t>(static_cast<double>(sequences) * fraction));
  if (n >= sequences) throw std::runtime_error("--eval-fraction leaves no training data");
  eval.seq_len = seq_len;
  eval.sequences = n;
  const size_t cut = static_cast<size_t>((sequences - n) * seq_len);
  eval.ids.assign(ids.begin() + cut, ids.end());
  ids.resize(cut);
  if (!labels.empty()) {
    const size_t label_cut = static_cast<size_t>((sequences - n) * label_width);
    eval.labels.assign(labels.begin() + label_cut, labels.end());
    labels.resize(label_cut);
    eval.label_width = label_width;
  }
  sequences -= n;
  return eval;
}

Dataset load_dataset(const std::string& path, const moe::model& model, int64_t seq_len) {
  return ends_with(path, ".safetensors") ? load_safetensors(path) : load_text(path, model, seq_len);
}

}  // namespace cli
