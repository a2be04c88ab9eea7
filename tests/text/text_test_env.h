// Where the text tests find what they need, and the peer they compare with. Everything the tests
// need from outside the repository comes from $MOE_DATA_DIR (default ~/.cache/moesdk, filled by
// scripts/setup); a missing piece fails the test with a message saying so.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "moe/moe_plugin.h"

namespace moe::test {

std::string data_dir();
std::string source_dir();
// $MOE_DATA_DIR/deepseek_v3/tokenizer.json (throws, naming it and scripts/setup, when absent).
std::string deepseek_tokenizer_json();
std::string deepseek_tokenizer_config();
// tests/text/data/<name>/tokenizer.json (made by scripts/make_sentencepiece_tokenizer.py).
std::string repo_tokenizer(const std::string& name, const std::string& file = "tokenizer.json");

// The built text plugin, loaded the way libmoe loads it.
const moe_modality_ops& text_plugin();

// A fresh directory under the system temp directory.
std::string make_temp_dir();

struct PeerResult {
  std::vector<int32_t> ids;
  std::string decoded;
  std::string nfkc;
};
// Encodes texts with the JS peer (@huggingface/tokenizers on node).
std::vector<PeerResult> run_peer(const std::string& tokenizer_json, const std::vector<std::string>& texts);

// The contents of a tokenizer.json's added_tokens.
std::vector<std::string> added_token_contents(const std::string& tokenizer_json);

// Escapes a string for a test message (control bytes and backslashes as \xHH).
std::string printable(const std::string& s, size_t max_bytes = 200);

}  // namespace moe::test
