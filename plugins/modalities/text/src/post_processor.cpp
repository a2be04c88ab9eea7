#include "post_processor.h"

namespace moe::text {
namespace {

constexpr int kMaxNesting = 16;

}  // namespace

PostProcessor::PostProcessor(const JsonNode& node) {
  bool has_template = false;
  add(node, has_template, 0);
}

void PostProcessor::add(const JsonNode& node,
                        bool& has_template, int depth) {
  if (depth > kMaxNesting) node.error(MOE_ERR_FORMAT, "post-processor Sequences are nested too deeply");
  std::string type = node.type();
  if (type == "Sequence") {
    JsonNode list = node.at("processors");
    for (size_t i = 0; i < list.array_size(); ++i) add(list.at(i), has_template, depth + 1);
  } else if (type == "ByteLevel") {
    trim_offsets = node.boolean_or("trim_offsets", true);
    trim_add_prefix_space = node.boolean_or("add_prefix_space", true);
  } else if (type == "TemplateProcessing") {
    if (has_template) node.error(MOE_ERR_UNSUPPORTED, "more than one TemplateProcessing");
    has_template = true;
    JsonNode single = node.at("single");
    JsonNode specials = node.at("special_tokens");
    bool seen_sequence = false;
    for (size_t i = 0; i < single.array_size(); ++i) {
      JsonNode item = single.at(i);
      if (auto seq = item.find("Sequence")) {
        std::string which = seq->at("id").string();
        if (which != "A") seq->error(MOE_ERR_UNSUPPORTED, "a single-sequence template can only hold $A, found $" + which);
        if (seen_sequence) seq->error(MOE_ERR_FORMAT, "$A appears twice");
        seen_sequence = true;
      } else if (auto special = item.find("SpecialToken")) {
        std::string name = special->at("id").string();
        auto entry = specials.find(name);
        if (!entry) special->error(MOE_ERR_FORMAT, "\"" + name + "\" is not in the template's special_tokens");
        JsonNode ids = entry->at("ids");
        for (size_t k = 0; k < ids.array_size(); ++k) {
          auto id = static_cast<int32_t>(ids.at(k).integer(0, (1 << 24) - 1));
          (seen_sequence ? after : before).push_back(id);
        }
      } else {
        item.error(MOE_ERR_FORMAT, "expected {\"Sequence\": ...} or {\"SpecialToken\": ...}");
      }
    }
    if (!seen_sequence) single.error(MOE_ERR_FORMAT, "the template has no $A");
  } else {
    node.error(MOE_ERR_UNSUPPORTED, "the post-processor type \"" + type +
                                        "\" is not supported (supported: TemplateProcessing, ByteLevel, Sequence)");
  }
}

}  // namespace moe::text
