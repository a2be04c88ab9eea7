#include "text_test_env.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "plugins/registry.h"

namespace moe::test {
namespace {

namespace fs = std::filesystem;

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

std::string require_file(const std::string& path, const std::string& hint) {
  if (!fs::is_regular_file(path)) throw std::runtime_error(path + " is missing: " + hint);
  return path;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

std::string data_dir() {
  std::string d = env("MOE_DATA_DIR");
  return d.empty() ? env("HOME") + "/.cache/moesdk" : d;
}

std::string source_dir() {
  std::string d = env("MOE_SOURCE_DIR");
  if (d.empty()) throw std::runtime_error("MOE_SOURCE_DIR is not set (run the tests through ctest)");
  return d;
}

std::string deepseek_tokenizer_json() {
  return require_file(data_dir() + "/deepseek_v3/tokenizer.json",
                      "the real DeepSeek-V3 tokenizer; run scripts/setup (or set MOE_DATA_DIR to its cache)");
}

std::string deepseek_tokenizer_config() {
  return require_file(data_dir() + "/deepseek_v3/tokenizer_config.json",
                      "the DeepSeek-V3 tokenizer_config.json; run scripts/setup (or set MOE_DATA_DIR)");
}

std::string repo_tokenizer(const std::string& name, const std::string& file) {
  return require_file(source_dir() + "/tests/text/data/" + name + "/" + file,
                      "made by scripts/make_sentencepiece_tokenizer.py tests/text/data");
}

const moe_modality_ops& text_plugin() {
  std::string dir = env("MOE_PLUGIN_DIR");
  if (dir.empty()) throw std::runtime_error("MOE_PLUGIN_DIR is not set (run the tests through ctest)");
  PluginRecord r = load_plugin(require_file(dir + "/libmoe_modality_text.so", "build the target moe_modality_text"));
  if (r.state != 0 || r.kind != MOE_PLUGIN_KIND_MODALITY)
    throw std::runtime_error("the text plugin was refused: " + r.reason);
  return *static_cast<const moe_modality_ops*>(r.descriptor->ops);
}

std::string make_temp_dir() {
  std::string pattern = (fs::temp_directory_path() / "moe_text_test_XXXXXX").string();
  if (!mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
  return pattern;
}

std::vector<PeerResult> run_peer(const std::string& tokenizer_json, const std::vector<std::string>& texts) {
  std::string module = data_dir() + "/node_modules/@huggingface/tokenizers/package.json";
  require_file(module, "the JS peer tokenizer; run scripts/setup (it runs npm install @huggingface/tokenizers)");
  std::string dir = make_temp_dir();
  std::string in_path = dir + "/texts.jsonl", out_path = dir + "/peer.jsonl";
  {
    std::ofstream in(in_path, std::ios::binary);
    for (const auto& t : texts) in << nlohmann::json(t).dump() << "\n";
  }
  std::string command = "node '" + source_dir() + "/tests/text/peer_encode.mjs' '" + tokenizer_json + "' '" + in_path +
                        "' '" + out_path + "'";
  int rc = std::system(command.c_str());
  if (rc != 0) throw std::runtime_error("the peer failed (exit status " + std::to_string(rc) + "): " + command);
  std::vector<PeerResult> results;
  std::istringstream lines(read_text(out_path));
  std::string line;
  while (std::getline(lines, line)) {
    auto j = nlohmann::json::parse(line);
    results.push_back({j.at("ids").get<std::vector<int32_t>>(), j.at("decoded").get<std::string>(),
                       j.at("nfkc").get<std::string>()});
  }
  fs::remove_all(dir);
  if (results.size() != texts.size())
    throw std::runtime_error("the peer returned " + std::to_string(results.size()) + " results for " +
                             std::to_string(texts.size()) + " texts");
  return results;
}

std::vector<std::string> added_token_contents(const std::string& tokenizer_json) {
  auto j = nlohmann::json::parse(read_text(tokenizer_json));
  std::vector<std::string> out;
  for (const auto& t : j.at("added_tokens")) out.push_back(t.at("content").get<std::string>());
  return out;
}

std::string printable(const std::string& s, size_t max_bytes) {
  std::string out;
  char buf[8];
  for (size_t i = 0; i < s.size() && i < max_bytes; ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != 0x7F && c != '\\') {
      out += static_cast<char>(c);
    } else {
      std::snprintf(buf, sizeof(buf), "\\x%02X", c);
      out += buf;
    }
  }
  if (s.size() > max_bytes) out += "...";
  return out;
}

}  // namespace moe::test
