#include "pre_tokenizer.h"
#include "pre_tokenizer_types.h"

namespace moe::text {
namespace {

// Sequences nested deeper than this are refused (no recursion on hostile input).
constexpr int kMaxNesting = 16;

}  // namespace

// Passes each piece a step produces on to the next step.
class PreTokenizerChain::NextStage final : public PieceSink {
 public:
  NextStage(const PreTokenizerChain& chain, size_t index, PieceSink& out, bool track)
      : chain_(chain), index_(index), out_(out), track_(track) {}
  void take(const Piece& piece) override { chain_.stage(index_, piece, out_, track_); }

 private:
  const PreTokenizerChain& chain_;
  size_t index_;
  PieceSink& out_;
  bool track_;
};

PreTokenizerChain::PreTokenizerChain(const JsonNode& node, bool& byte_level) { add(node, byte_level, 0); }

void PreTokenizerChain::add(const JsonNode& node, bool& byte_level, int depth) {
  if (depth > kMaxNesting) node.error(MOE_ERR_FORMAT, "pre-tokenizer Sequences are nested too deeply");
  std::string type = node.type();
  if (type == "Sequence") {
    JsonNode list = node.at("pretokenizers");
    for (size_t i = 0; i < list.array_size(); ++i) add(list.at(i), byte_level, depth + 1);
    return;
  }
  if (byte_level)
    node.error(MOE_ERR_UNSUPPORTED, "a \"" + type + "\" pre-tokenizer after ByteLevel is not supported (ByteLevel must come last)");
  if (type == "Split") {
    steps_.push_back(make_split(node));
  } else if (type == "ByteLevel") {
    steps_.push_back(make_byte_level(node));
    byte_level = true;
  } else if (type == "Metaspace") {
    steps_.push_back(make_metaspace(node));
  } else if (type == "Digits") {
    steps_.push_back(make_digits(node));
  } else {
    node.error(MOE_ERR_UNSUPPORTED, "the pre-tokenizer type \"" + type +
                                        "\" is not supported (supported: Split, ByteLevel, Metaspace, Digits, Sequence)");
  }
}

void PreTokenizerChain::stage(size_t index, const Piece& piece, PieceSink& out, bool track) const {
  if (index == steps_.size()) {
    out.take(piece);
    return;
  }
  NextStage next(*this, index + 1, out, track);
  steps_[index]->split(piece, next, track);
}

}  // namespace moe::text
