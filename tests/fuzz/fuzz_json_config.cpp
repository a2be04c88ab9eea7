// Any bytes as a JSON configuration read through ConfigReader. Parsing and every typed accessor,
// on every key at every level, must end in a value or a moe::Error, never a crash.
#include <cstdint>
#include <string_view>

#include "base/error.h"
#include "io/config_reader.h"

namespace {

template <typename F>
void attempt(F&& f) {
  try {
    f();
  } catch (const moe::Error&) {
  }
}

void read_everything(const moe::io::ConfigReader& c) {
  for (const std::string& key : c.keys()) {
    if (!c.has(key)) __builtin_trap();
    (void)c.is_null(key);
    attempt([&] { c.get_int(key); });
    attempt([&] { c.get_int_or(key, 1); });
    attempt([&] { c.get_positive_int(key); });
    attempt([&] { c.get_non_negative_int_or(key, 0); });
    attempt([&] { c.get_float(key); });
    attempt([&] { c.get_float_or(key, 1.0); });
    attempt([&] { c.get_bool_or(key, false); });
    attempt([&] { c.get_string(key); });
    attempt([&] { c.get_int_list(key); });
    attempt([&] { c.get_string_list(key); });
    attempt([&] { read_everything(c.object(key)); });  // depth is bounded by the parser's limit
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  attempt([&] { read_everything(moe::io::ConfigReader(moe::io::parse_json(text, "<fuzz input>"), "<fuzz input>")); });
  return 0;
}
