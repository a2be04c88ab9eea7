#include <cstdio>
#include <stdexcept>

#include "commands.h"

namespace cli {
namespace {
const char* dtype_name(moe_dtype t) { return t == MOE_DTYPE_BF16 ? "bf16" : t == MOE_DTYPE_F32 ? "f32" : "other"; }
}  // namespace

int cmd_info(Args& args) {
  auto dirs = args.take_positional();
  if (dirs.empty() && args.has("model")) dirs.push_back(args.value("model"));
  if (dirs.size() != 1) throw std::runtime_error("usage: moe info MODEL_DIR");
  const std::string dir = dirs.front();
  moe::context ctx = make_context(args);
  auto options = model_options(args);
  args.finish();
  moe::model m(ctx, dir, options);
  moe_model_info i = m.describe();
  std::printf("model:              %s\n", dir.c_str());
  std::printf("architecture:       %s\n", i.architecture);
  std::printf("dtype:              %s\n", dtype_name(i.dtype));
  std::printf("vocab size:         %lld\n", static_cast<long long>(i.vocab_size));
  std::printf("hidden size:        %lld\n", static_cast<long long>(i.hidden_size));
  std::printf("layers:             %lld (%lld MoE)\n", static_cast<long long>(i.num_layers),
              static_cast<long long>(i.num_moe_layers));
  std::printf("attention heads:    %lld (%lld key/value)\n", static_cast<long long>(i.num_attention_heads),
              static_cast<long long>(i.num_kv_heads));
  std::printf("experts:            %lld routed, %lld per token, %lld shared\n", static_cast<long long>(i.num_experts),
              static_cast<long long>(i.experts_per_token), static_cast<long long>(i.num_shared_experts));
  std::printf("max positions:      %lld\n", static_cast<long long>(i.max_position_embeddings));
  std::printf("parameters:         %lld\n", static_cast<long long>(i.num_parameters));
  std::printf("active per token:   %lld\n", static_cast<long long>(i.active_parameters));
  std::printf("backend:            %s (%s)\n", ctx.backend().c_str(), ctx.device().c_str());
  return 0;
}

}  // namespace cli
