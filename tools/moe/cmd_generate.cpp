#include <cstdio>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "commands.h"

namespace cli {

// One --ids or --prompt: the tokens stream out as they come (moe_generate). Several (each flag may
// repeat; one row per occurrence): all rows generate together (moe_generate_batch, row r sampling with
// seed + r) and each row's output is printed on its own line at the end, in the order given.
int cmd_generate(Args& args) {
  std::string dir = args.value("model");
  if (dir.empty()) throw std::runtime_error("--model DIR is required");
  std::vector<std::string> id_rows = args.values("ids"), text_rows = args.values("prompt");
  if (id_rows.empty() == text_rows.empty())
    throw std::runtime_error("give --ids 1,2,3 or --prompt TEXT (either may repeat, one row each), not both");
  const bool has_prompt = !text_rows.empty();
  std::vector<std::vector<int32_t>> prompts;
  for (const auto& ids : id_rows) prompts.push_back(parse_ids(ids, "ids"));
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
  std::optional<moe::tokenizer> tok;
  if (has_prompt) {
    tok = m.get_tokenizer();
    for (const auto& text : text_rows) {
      prompts.push_back(tok->encode(text, special));
      if (prompts.back().empty()) throw std::runtime_error("--prompt \"" + text + "\" encodes to no tokens");
    }
  }
  if (prompts.size() > 1) {
    // Text rows collect the library's per-row text (each row's stream continues from its prompt).
    std::vector<std::string> texts(prompts.size());
    moe::model::batch_token_callback collect;
    if (tok)
      collect = [&texts](int64_t row, int32_t, const std::string& text) {
        texts[static_cast<size_t>(row)] += text;
        return MOE_GENERATE_CONTINUE;
      };
    auto rows = m.generate_batch(prompts, g, collect);
    for (size_t r = 0; r < rows.size(); ++r) {
      if (tok) std::fputs(texts[r].c_str(), stdout);
      for (size_t i = 0; !tok && i < rows[r].size(); ++i) std::printf(i ? " %d" : "%d", rows[r][i]);
      std::fputc('\n', stdout);
    }
    return 0;
  }
  if (has_prompt) {
    // Text appears as it is generated: the callback gets each token's completed UTF-8.
    g.on_token = [](int32_t, const std::string& text) {
      std::fputs(text.c_str(), stdout);
      std::fflush(stdout);
      return true;
    };
  } else {
    bool first = true;
    g.on_token = [first](int32_t token, const std::string&) mutable {
      std::printf(first ? "%d" : " %d", token);
      std::fflush(stdout);
      first = false;
      return true;
    };
  }
  m.generate(prompts[0], g);
  std::fputc('\n', stdout);
  return 0;
}

}  // namespace cli
