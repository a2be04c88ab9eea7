// The moe CLI's commands. Each returns the process exit code.
#pragma once

#include "args.h"

namespace cli {

int cmd_info(Args& args);
int cmd_plugins(Args& args);
int cmd_generate(Args& args);
int cmd_logits(Args& args);
int cmd_tokenize(Args& args);
int cmd_detokenize(Args& args);
int cmd_train(Args& args);
int cmd_finetune(Args& args);

}  // namespace cli
