#include <cstdio>
#include <stdexcept>

#include "commands.h"

namespace cli {

int cmd_generate(Args& args) {
  std::string dir = args.value("model");
  if (dir.empty()) throw std::runtime_error("--model DIR is required");
  bool has_ids = args.has("ids"), has_prompt = args.has("prompt");
  if (has_ids == has_prompt) throw std::runtime_error("give exactly one of --ids 1,2,3 or --prompt TEXT");
  std::vector<int32_t> prompt_ids = has_ids ? parse_ids(args.value("ids"), "ids") : std::vector<int32_t>{};
  std::string prompt_text = has_prompt ? args.value("prompt") : "";
  moe::generate_options g;
  g.max_new_tokens = static_cast<int32_t>(args.integer("max-new-tokens", 64));
  g.temperature = static_cast<float>(args.number("temperature", 0.0));
  g.top_k = static_cast<int32_t>(args.integer("top-k", 0));
  g.top_p = static_cast<float>(args.number("top-p", 1.0));
  g.seed = static_cast<uint64_t>(args.integer("seed", 0));
  if (args.has("stop")) g.stop_ids = parse_ids(args.value("stop"), "stop");
  bool special = args.flag("special");
  moe::context ctx = make_context(args);
  auto options = model_options(args);
  args.finish();

  moe::model m(ctx, dir, options);
  if (has_prompt) {
    moe::tokenizer tok = m.get_tokenizer();
    prompt_ids = tok.encode(prompt_text, special);
    if (prompt_ids.empty()) throw std::runtime_error("--prompt encodes to no tokens");
    // Text appears as it is generated: the callback gets each token's completed UTF-8.
    g.on_token = [](int32_t, const std::string& text) {
      std::fputs(text.c_str(), stdout);
      std::fflush(stdout);
      return true;
    };
    m.generate(prompt_ids, g);
    std::fputc('\n', stdout);
  } else {
    bool first = true;
    g.on_token = [&first](int32_t token, const std::string&) {
      std::printf(first ? "%d" : " %d", token);
      std::fflush(stdout);
      first = false;
      return true;
    };
    m.generate(prompt_ids, g);
    std::fputc('\n', stdout);
  }
  return 0;
}

}  // namespace cli
