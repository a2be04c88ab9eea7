// Any bytes as a tokenizer.json, loaded by the text plugin's code: the result is a tokenizer or a
// moe::text::Error, never a crash, a hang or an allocation the input cannot justify. A tokenizer
// that loads must then encode and decode a fixed text, and its stream must give valid UTF-8.
#include <cstdint>
#include <string>
#include <string_view>

#include "decode_stream.h"
#include "text_error.h"
#include "tokenizer.h"
#include "utf8.h"

namespace {

constexpr char kSample[] = "Hello world! 你好 <s> 123 \xF0\x9F\x98\x80  \t\n end";

void exercise(const moe::text::Tokenizer& t) {
  moe::text::Encoding e;
  try {
    t.encode(kSample, true, true, e);
  } catch (const moe::text::Error&) {
    return;  // e.g. a regex that gives up, or an unk token missing from the vocabulary
  }
  if (e.offsets.size() != e.ids.size()) __builtin_trap();
  for (const auto& span : e.offsets)
    if (span.begin > span.end || span.end > sizeof(kSample) - 1) __builtin_trap();
  std::string text;
  try {
    text = t.decode(e.ids.data(), e.ids.size(), false);
  } catch (const moe::text::Error&) {
    return;
  }
  if (moe::text::find_invalid_utf8(text) != text.size()) __builtin_trap();
  moe::text::DecodeStream stream(t, true);
  std::string streamed;
  for (int32_t id : e.ids) streamed += stream.push(id);
  streamed += stream.finish();
  if (moe::text::find_invalid_utf8(streamed) != streamed.size()) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view json(reinterpret_cast<const char*>(data), size);
  try {
    moe::text::Tokenizer t(json, "fuzz/tokenizer.json");
    exercise(t);
  } catch (const moe::text::Error&) {
  }
  return 0;
}
