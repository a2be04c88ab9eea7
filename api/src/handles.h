// What the opaque C handles are. Each holds shared ownership of what it needs, so a model keeps its
// context alive even if the application frees the context handle first.
#pragma once

#include <memory>

#include "context.h"

struct moe_context {
  std::shared_ptr<moe::Context> impl;
};
