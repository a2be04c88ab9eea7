// Any bytes as text for three tokenizers: the real DeepSeek-V3 one (when $MOE_DATA_DIR has it), the
// SentencePiece-style one of tests/text, and one built here that uses every component (NFKC and
// Replace normalizers, Split, Digits and ByteLevel pre-tokenizers, added tokens with lstrip, rstrip
// and single_word, a template). Invalid UTF-8 must be refused with an error; valid text must encode
// with offsets inside the text, decode back to the text (exactly, or as the format keeps it) when no
// BOS/EOS was added, and stream-decode to what decode gives.
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "byte_level_alphabet.h"
#include "decode_stream.h"
#include "text_error.h"
#include "tokenizer.h"
#include "utf8.h"

namespace {

using moe::text::Tokenizer;

std::string every_component_tokenizer() {
  nlohmann::json vocab = nlohmann::json::object();
  int id = 0;
  for (int b = 0; b < 256; ++b) {
    std::string c;
    moe::text::append_utf8(c, moe::text::byte_level_char(static_cast<uint8_t>(b)));
    vocab[c] = id++;
  }
  std::vector<std::string> merges;
  for (const char* pair : {"\xC4\xA0 t", "t h", "\xC4\xA0t h", "e r", "\xC4\xA0th e", "i n", "o n", "a n"}) {
    std::string p = pair;
    size_t space = p.find(' ');
    std::string merged = p.substr(0, space) + p.substr(space + 1);
    if (!vocab.contains(merged)) vocab[merged] = id++;
    merges.push_back(p);
  }
  using J = nlohmann::json;
  J added = J::array({J{{"id", id}, {"content", "<|special|>"}, {"special", true}, {"normalized", false}},
                      J{{"id", id + 1}, {"content", "<mask>"}, {"lstrip", true}, {"rstrip", true},
                        {"single_word", true}, {"normalized", true}},
                      J{{"id", id + 2}, {"content", "<s>"}, {"special", true}, {"normalized", false}}});
  J normalizer = {{"type", "Sequence"},
                  {"normalizers", J::array({J{{"type", "NFKC"}},
                                            J{{"type", "Replace"}, {"pattern", {{"Regex", " {3,}"}}}, {"content", "  "}}})}};
  J split = {{"type", "Split"},
             {"pattern", {{"Regex", "\\p{L}+|\\p{N}+|\\s+|[^\\s\\p{L}\\p{N}]+"}}},
             {"behavior", "Isolated"},
             {"invert", false}};
  J pre_tokenizer = {{"type", "Sequence"},
                     {"pretokenizers", J::array({split, J{{"type", "Digits"}, {"individual_digits", true}},
                                                 J{{"type", "ByteLevel"}, {"add_prefix_space", true}, {"use_regex", false}}})}};
  J bos = {{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}};
  J sequence = {{"Sequence", {{"id", "A"}, {"type_id", 0}}}};
  J template_processing = {{"type", "TemplateProcessing"},
                           {"single", J::array({bos, sequence})},
                           {"special_tokens", {{"<s>", {{"id", "<s>"}, {"ids", J::array({id + 2})}, {"tokens", J::array({"<s>"})}}}}}};
  J post = {{"type", "Sequence"},
            {"processors", J::array({J{{"type", "ByteLevel"}, {"trim_offsets", true}}, template_processing})}};
  J j = {{"added_tokens", added},
         {"normalizer", normalizer},
         {"pre_tokenizer", pre_tokenizer},
         {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", merges}}},
         {"post_processor", post},
         {"decoder", {{"type", "ByteLevel"}}}};
  return j.dump();
}

struct Subject {
  std::unique_ptr<Tokenizer> tokenizer;
  bool sentencepiece = false;  // a literal U+2581 and one leading space do not come back
  bool normalizes = false;     // decode gives the NFKC form, not the text itself
};

std::vector<Subject>& subjects() {
  static std::vector<Subject> all = [] {
    std::vector<Subject> s;
    const char* data = std::getenv("MOE_DATA_DIR");
    std::string deepseek = std::string(data ? data : std::string(std::getenv("HOME") ? std::getenv("HOME") : "") + "/.cache/moesdk") +
                           "/deepseek_v3/tokenizer.json";
    if (std::filesystem::exists(deepseek))
      s.push_back({std::make_unique<Tokenizer>(moe::text::load_tokenizer(deepseek, "")), false, false});
    s.push_back({std::make_unique<Tokenizer>(moe::text::load_tokenizer(MOE_FUZZ_SOURCE_DIR "/tests/text/data/sp_bpe/tokenizer.json", "")),
                 true, false});
    s.push_back({std::make_unique<Tokenizer>(every_component_tokenizer(), "every_component.json"), false, true});
    return s;
  }();
  return all;
}

std::string expected_round_trip(const Subject& s, const std::string& text) {
  if (!s.sentencepiece) return text;
  std::string out;
  for (size_t i = 0; i < text.size();) {
    if (text.compare(i, 3, "\xE2\x96\x81") == 0) {
      out += ' ';
      i += 3;
    } else {
      out += text[i++];
    }
  }
  if (!out.empty() && out[0] == ' ') out.erase(0, 1);
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  auto& all = subjects();
  const Subject& s = all[data[0] % all.size()];
  bool offsets = data[0] & 0x10, special = data[0] & 0x20;
  std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  bool valid = moe::text::find_invalid_utf8(text) == text.size();
  moe::text::Encoding e;
  try {
    s.tokenizer->encode(text, special, offsets, e);
  } catch (const moe::text::Error& err) {
    if (valid && err.status() != MOE_ERR_LIMIT) __builtin_trap();  // valid text must encode
    return 0;
  }
  if (!valid) __builtin_trap();  // invalid UTF-8 must be refused
  if (offsets) {
    if (e.offsets.size() != e.ids.size()) __builtin_trap();
    for (const auto& span : e.offsets)
      if (span.begin > span.end || span.end > text.size()) __builtin_trap();
  }
  // Special tokens typed in the text decode to themselves; only added BOS/EOS are not in the text.
  std::string decoded = s.tokenizer->decode(e.ids.data(), e.ids.size(), false);
  if (!special && !s.normalizes && decoded != expected_round_trip(s, text)) __builtin_trap();
  moe::text::DecodeStream stream(*s.tokenizer, false);
  std::string streamed;
  for (int32_t id : e.ids) streamed += stream.push(id);
  streamed += stream.finish();
  if (streamed != decoded) __builtin_trap();
  return 0;
}
