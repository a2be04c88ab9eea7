#include "tokenizer_config.h"

#include "json_access.h"
#include "tokenizer_json.h"

namespace moe::text {
namespace {

std::optional<std::string> token_content(const JsonNode& root, const char* key) {
  auto node = root.find(key);
  if (!node) return std::nullopt;
  if (node->is_object()) return node->at("content").string();
  return node->string();
}

}  // namespace

TokenizerConfig read_tokenizer_config(const std::string& path, const std::string& display_name) {
  nlohmann::json json = parse_json(read_file(path, display_name), display_name);
  JsonNode root(json, display_name, "");
  if (!root.is_object()) root.error(MOE_ERR_FORMAT, "expected a JSON object");
  TokenizerConfig c;
  if (auto v = root.find("add_bos_token")) c.add_bos_token = v->boolean();
  if (auto v = root.find("add_eos_token")) c.add_eos_token = v->boolean();
  c.bos_token = token_content(root, "bos_token");
  c.eos_token = token_content(root, "eos_token");
  c.pad_token = token_content(root, "pad_token");
  c.unk_token = token_content(root, "unk_token");
  return c;
}

}  // namespace moe::text
