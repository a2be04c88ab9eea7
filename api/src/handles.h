// What the opaque C handles are. Each holds shared ownership of what it needs, so a model keeps its
// context alive even if the application frees the context handle first.
#pragma once

#include <memory>
#include <string>

#include "context.h"
#include "text/tokenizer.h"

struct moe_context {
  std::shared_ptr<moe::Context> impl;
};

namespace moe {
class Model;
class Tokenizer;
}  // namespace moe

// A tokenizer handle: owned (moe_tokenizer_load) or a view of a model's (moe_model_tokenizer).
struct moe_tokenizer {
  std::shared_ptr<moe::Context> context;  // keeps the text plugin's context alive
  std::unique_ptr<moe::Tokenizer> owned;
  const moe::Tokenizer* impl = nullptr;   // what every call uses: owned.get() or the model's
};

struct moe_model {
  std::unique_ptr<moe::Model> impl;
  std::string architecture;  // backs moe_model_info.architecture
  moe_tokenizer tokenizer;   // view of the model's tokenizer (impl null when it has none)
};
