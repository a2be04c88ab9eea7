// Load a checkpoint and generate, with the C++ layer (moe.hpp): handles free themselves and errors
// are exceptions.
//
//   generate_cpp MODEL_DIR [PROMPT]
//
// With a tokenizer.json in MODEL_DIR the prompt is text and the output is printed as it is produced;
// without one, the prompt is the ids 1 2 3 and the new ids are printed.
#include <iostream>
#include <string>
#include <vector>

#include "moe/moe.hpp"

int main(int argc, char** argv) try {
  if (argc < 2) {
    std::cerr << "usage: " << argv[0] << " MODEL_DIR [PROMPT]\n";
    return 2;
  }
  moe::context ctx;  // backend "auto": the best plugin that can run here
  moe::model model(ctx, argv[1]);
  const moe_model_info info = model.describe();
  std::cout << info.architecture << ", " << info.num_layers << " layers, " << info.num_experts << " experts, on "
            << ctx.backend() << "\n";

  std::vector<int32_t> prompt{1, 2, 3};
  bool has_tokenizer = true;
  try {
    const std::string text = argc > 2 ? argv[2] : "The experts";
    prompt = model.get_tokenizer().encode(text, true);
    std::cout << text;
  } catch (const moe::error& e) {
    if (e.status() != MOE_ERR_NOT_FOUND) throw;
    has_tokenizer = false;  // no tokenizer.json: keep the ids
  }

  moe::generate_options options;
  options.max_new_tokens = 16;
  options.on_token = [&](int32_t, const std::string& text) {
    if (has_tokenizer) std::cout << text << std::flush;
    return true;  // keep going
  };
  const std::vector<int32_t> ids = model.generate(prompt, options);
  std::cout << "\ngenerated " << ids.size() << " tokens:";
  for (int32_t id : ids) std::cout << ' ' << id;
  std::cout << "\n";
  return 0;
} catch (const moe::error& e) {
  std::cerr << e.what() << "\n";
  return 1;
}
