#include "decode_stream.h"

namespace moe::text {

std::string DecodeStream::push(int32_t id) {
  if (!tokenizer_.is_known(id) || (skip_special_ && tokenizer_.is_special(id))) return {};
  std::string added;
  if (previous_) {
    int32_t pair[2] = {*previous_, id};
    std::string alone = tokenizer_.decode_bytes(pair, 1, skip_special_);
    std::string both = tokenizer_.decode_bytes(pair, 2, skip_special_);
    // Decoders only change the start of a text, so `alone` is a prefix of `both`; where one does
    // not (a Strip that removes trailing characters), the new text starts where they differ.
    size_t common = 0;
    while (common < alone.size() && common < both.size() && alone[common] == both[common]) ++common;
    added = both.substr(common);
  } else {
    added = tokenizer_.decode_bytes(&id, 1, skip_special_);
  }
  previous_ = id;
  return assembler_.push(added);
}

}  // namespace moe::text
