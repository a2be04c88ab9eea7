#include <cstdio>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <string>

#include "commands.h"

namespace cli {
namespace {

moe::tokenizer open_tokenizer(Args& args, const moe::context& ctx) {
  std::string file = args.value("tokenizer");
  if (file.empty()) throw std::runtime_error("--tokenizer FILE is required (a tokenizer.json)");
  return moe::tokenizer(ctx, file, args.value("tokenizer-config"));
}

}  // namespace

int cmd_tokenize(Args& args) {
  bool special = args.flag("special");
  moe::context ctx = make_context(args);
  moe::tokenizer tok = open_tokenizer(args, ctx);
  args.finish();
  std::string line;
  while (std::getline(std::cin, line)) {
    auto ids = tok.encode(line, special);
    for (size_t i = 0; i < ids.size(); ++i) std::printf(i ? " %d" : "%d", ids[i]);
    std::fputc('\n', stdout);
  }
  return 0;
}

int cmd_detokenize(Args& args) {
  bool skip_special = args.flag("skip-special");
  moe::context ctx = make_context(args);
  moe::tokenizer tok = open_tokenizer(args, ctx);
  args.finish();
  std::string line;
  while (std::getline(std::cin, line)) {
    std::istringstream in(line);
    std::vector<int32_t> ids;
    long long id;
    while (in >> id) ids.push_back(static_cast<int32_t>(id));
    if (!in.eof()) throw std::runtime_error("detokenize: a line holds something other than token ids: " + line);
    std::string text = tok.decode(ids, skip_special);
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fputc('\n', stdout);
  }
  return 0;
}

}  // namespace cli
