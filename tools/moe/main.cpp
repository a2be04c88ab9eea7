// moe: the MoE SDK command-line tool, built only on the public API.
#include <cstdio>
#include <cstring>
#include <string>

#include "commands.h"

namespace {

const char* kUsage =
    "usage: moe <command> [options]\n"
    "\n"
    "commands:\n"
    "  info MODEL_DIR                       describe a checkpoint (architecture, sizes, parameters)\n"
    "  plugins                              list the plugins found, loaded or refused (and why)\n"
    "  generate --model DIR (--ids 1,2,3 | --prompt TEXT) [--ids ... | --prompt ...]\n"
    "           [--max-new-tokens N] [--temperature T] [--top-k K] [--top-p P] [--seed S]\n"
    "           [--stop 2,3]                generate tokens (prints ids, or text with --prompt);\n"
    "                                       several rows generate together, one output line each\n"
    "  logits --model DIR --ids 1,2,3 [--ids ...] --out FILE.safetensors\n"
    "                                       write fp32 logits [rows, tokens, vocab] as tensor 'logits'\n"
    "  tokenize --tokenizer FILE [--special]  stdin lines -> ids per line\n"
    "  detokenize --tokenizer FILE [--skip-special]  stdin lines of ids -> text per line\n"
    "  train (--config config.json [--tokenizer tokenizer.json] | --model DIR) --data FILE --out DIR\n"
    "        [--steps N --batch-size B --seq-len L --lr LR --weight-decay W --beta1 B1 --beta2 B2 --eps E\n"
    "         --clip C --warmup N --schedule constant|cosine --seed S --no-shuffle --grad-accumulation N\n"
    "         --eval-fraction F --eval-every N --save-every N --resume --aux-loss C --z-loss C\n"
    "         --sequence-balance-loss C --bias-update-speed G --gating topk|gumbel --gumbel-temperature T\n"
    "         --gumbel-temperature-final T --capacity-factor F --label-smoothing S --on-nan skip|stop]\n"
    "  finetune --model DIR --data FILE --out DIR [train options] [--freeze-layers N --freeze-experts 0,1\n"
    "         --freeze REGEX --lora-rank R --lora-alpha A --lora-experts --merge-lora\n"
    "         --task lm|classify|span --num-labels N]\n"
    "\n"
    "common options: --backend cpu|cuda|auto  --threads N  --plugin-dir DIR (repeatable)\n"
    "                --dtype f32|bf16|auto  --verbose\n";

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h") || !std::strcmp(argv[1], "help")) {
    std::fputs(kUsage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  if (!std::strcmp(argv[1], "--version")) {
    std::printf("moe %s\n", moe::version().c_str());
    return 0;
  }
  std::string command = argv[1];
  try {
    cli::Args args(argc, argv, 2);
    if (command == "info") return cli::cmd_info(args);
    if (command == "plugins") return cli::cmd_plugins(args);
    if (command == "generate") return cli::cmd_generate(args);
    if (command == "logits") return cli::cmd_logits(args);
    if (command == "tokenize") return cli::cmd_tokenize(args);
    if (command == "detokenize") return cli::cmd_detokenize(args);
    if (command == "train") return cli::cmd_train(args);
    if (command == "finetune") return cli::cmd_finetune(args);
    std::fprintf(stderr, "moe: unknown command '%s'\n\n%s", command.c_str(), kUsage);
    return 2;
  } catch (const moe::error& e) {
    std::fprintf(stderr, "moe %s: %s\n", command.c_str(), e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "moe %s: %s\n", command.c_str(), e.what());
    return 2;
  }
}
