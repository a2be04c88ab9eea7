// Small tokenizer.json documents for white-box tests, built as JSON and loaded from memory.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tokenizer.h"

namespace moe::test {

// A BPE model over the given vocabulary (ids in order) and merges ("a b" strings).
inline nlohmann::json bpe_model(const std::vector<std::string>& vocab, const std::vector<std::string>& merges) {
  nlohmann::json v = nlohmann::json::object();
  for (size_t i = 0; i < vocab.size(); ++i) v[vocab[i]] = i;
  return {{"type", "BPE"}, {"vocab", v}, {"merges", merges}};
}

inline nlohmann::json tokenizer_json(nlohmann::json model) {
  return {{"version", "1.0"},        {"added_tokens", nlohmann::json::array()}, {"normalizer", nullptr},
          {"pre_tokenizer", nullptr}, {"post_processor", nullptr},          {"decoder", nullptr},
          {"model", std::move(model)}};
}

inline text::Tokenizer load(const nlohmann::json& j) { return text::Tokenizer(j.dump(), "test/tokenizer.json"); }

inline std::vector<int32_t> encode(const text::Tokenizer& t, const std::string& s, bool add_special = false) {
  text::Encoding e;
  t.encode(s, add_special, false, e);
  return e.ids;
}

}  // namespace moe::test
