#include "io/json_file.h"

#include <functional>
#include <vector>

#include "base/error.h"
#include "io/mapped_file.h"

namespace moe::io {
namespace {

// nlohmann's messages start with "[json.exception.parse_error.101] "; the id means nothing to a user.
std::string without_exception_id(const char* what) {
  std::string_view s(what);
  if (!s.empty() && s.front() == '[') {
    size_t end = s.find("] ");
    if (end != std::string_view::npos) s.remove_prefix(end + 2);
  }
  return std::string(s);
}

// Enforces JsonLimits while the parser builds the document, before the memory is spent.
class LimitChecker {
 public:
  LimitChecker(const std::string& source, const JsonLimits& limits) : source_(source), limits_(limits) {}

  bool operator()(int /*depth*/, Json::parse_event_t event, Json& /*parsed*/) {
    switch (event) {
      case Json::parse_event_t::object_start:
      case Json::parse_event_t::array_start:
        count_element();
        if (open_.size() >= static_cast<size_t>(limits_.max_depth))
          fail(MOE_ERR_LIMIT, source_ + ": JSON nests deeper than " + std::to_string(limits_.max_depth) + " levels");
        open_.push_back({event == Json::parse_event_t::array_start, 0});
        break;
      case Json::parse_event_t::object_end:
      case Json::parse_event_t::array_end:
        open_.pop_back();
        break;
      case Json::parse_event_t::value:
        count_element();
        break;
      case Json::parse_event_t::key:
        break;
    }
    return true;
  }

 private:
  struct Container {
    bool is_array;
    size_t length;
  };

  void count_element() {
    if (open_.empty() || !open_.back().is_array) return;
    if (++open_.back().length > limits_.max_array_length)
      fail(MOE_ERR_LIMIT, source_ + ": JSON array longer than " + std::to_string(limits_.max_array_length) +
                              " elements");
  }

  const std::string& source_;
  const JsonLimits& limits_;
  std::vector<Container> open_;
};

}  // namespace

Json parse_json(std::string_view text, const std::string& source, const JsonLimits& limits) {
  LimitChecker checker(source, limits);
  try {
    return Json::parse(text.begin(), text.end(), std::ref(checker));
  } catch (const Json::parse_error& e) {
    fail(MOE_ERR_FORMAT, source + ": malformed JSON (byte " + std::to_string(e.byte) + "): " +
                             without_exception_id(e.what()));
  } catch (const Json::exception& e) {  // e.g. a number too large for a double
    fail(MOE_ERR_FORMAT, source + ": malformed JSON: " + without_exception_id(e.what()));
  }
}

Json read_json_file(const std::string& path, const JsonLimits& limits) {
  auto file = MappedFile::open(path);
  if (file->size() > kMaxJsonFileBytes)
    fail(MOE_ERR_LIMIT, path + ": JSON file of " + std::to_string(file->size()) + " bytes exceeds the limit of " +
                            std::to_string(kMaxJsonFileBytes) + " bytes");
  std::string_view text(reinterpret_cast<const char*>(file->data()), file->size());
  return parse_json(text, path, limits);
}

}  // namespace moe::io
