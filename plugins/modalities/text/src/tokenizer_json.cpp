#include "tokenizer_json.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>

#include "text_error.h"

namespace moe::text {
namespace {

using Json = nlohmann::json;

// SAX events of the whole file: model.vocab / model.merges go to flat lists, everything else to a
// DOM builder. A key is held back until its value starts, since a captured value must not reach
// the DOM at all.
class Reader final : public nlohmann::json_sax<Json> {
 public:
  explicit Reader(TokenizerJson& out) : out_(out), dom_(out.document, true) {}

  const std::string& error() const { return error_; }

  bool null() override { return scalar([&] { return dom_.null(); }, "null"); }
  bool boolean(bool v) override { return scalar([&] { return dom_.boolean(v); }, "a boolean"); }
  bool number_integer(number_integer_t v) override {
    if (capture_ == Capture::Vocab) return vocab_id(v);
    return scalar([&] { return dom_.number_integer(v); }, "a number");
  }
  bool number_unsigned(number_unsigned_t v) override {
    if (capture_ == Capture::Vocab)
      return vocab_id(v > static_cast<number_unsigned_t>(INT64_MAX) ? INT64_MAX : static_cast<int64_t>(v));
    return scalar([&] { return dom_.number_unsigned(v); }, "a number");
  }
  bool number_float(number_float_t v, const string_t& s) override {
    return scalar([&] { return dom_.number_float(v, s); }, "a number");
  }
  bool binary(binary_t& v) override { return scalar([&] { return dom_.binary(v); }, "binary data"); }
  bool string(string_t& v) override {
    if (capture_ == Capture::Merges) return merge_string(v);
    if (capture_ == Capture::MergePair) {
      pair_.push_back(v);
      return pair_.size() <= 2 || fail_merge("a merge pair must hold exactly two strings");
    }
    return scalar([&] { return dom_.string(v); }, "a string");
  }

  bool key(string_t& k) override {
    if (capture_ == Capture::Vocab) {
      vocab_key_ = k;
      return true;
    }
    pending_key_ = k;
    return true;
  }

  bool start_object(std::size_t n) override {
    if (capture_ != Capture::None) return capture_type_error("an object");
    bool is_model = frames_.size() == 1 && pending_key_ == "model";
    if (in_model() && pending_key_ == "vocab") {
      pending_key_.reset();
      capture_ = Capture::Vocab;
      out_.vocab_captured = true;
      return true;
    }
    if (!forward_key()) return false;
    frames_.push_back(is_model);
    return dom_.start_object(n);
  }
  bool end_object() override {
    if (capture_ == Capture::Vocab) {
      capture_ = Capture::None;
      return true;
    }
    frames_.pop_back();
    return dom_.end_object();
  }
  bool start_array(std::size_t n) override {
    if (capture_ == Capture::Merges) {
      capture_ = Capture::MergePair;
      pair_.clear();
      return true;
    }
    if (capture_ != Capture::None) return capture_type_error("an array");
    if (in_model() && pending_key_ == "merges") {
      pending_key_.reset();
      capture_ = Capture::Merges;
      out_.merges_captured = true;
      return true;
    }
    if (!forward_key()) return false;
    frames_.push_back(false);
    return dom_.start_array(n);
  }
  bool end_array() override {
    if (capture_ == Capture::MergePair) {
      if (pair_.size() != 2) return fail_merge("a merge pair must hold exactly two strings");
      out_.merges.emplace_back(std::move(pair_[0]), std::move(pair_[1]));
      capture_ = Capture::Merges;
      return true;
    }
    if (capture_ == Capture::Merges) {
      capture_ = Capture::None;
      return true;
    }
    frames_.pop_back();
    return dom_.end_array();
  }

  bool parse_error(std::size_t position, const std::string&, const nlohmann::detail::exception& e) override {
    error_ = "not valid JSON at byte " + std::to_string(position) + " (" + e.what() + ")";
    return false;
  }

 private:
  enum class Capture { None, Vocab, Merges, MergePair };

  bool in_model() const { return !frames_.empty() && frames_.back() && frames_.size() == 2; }

  bool forward_key() {
    if (!pending_key_) return true;
    std::string k = std::move(*pending_key_);
    pending_key_.reset();
    return dom_.key(k);
  }
  template <typename Event>
  bool scalar(Event&& event, const char* kind) {
    if (capture_ != Capture::None) return capture_type_error(kind);
    return forward_key() && event();
  }

  bool vocab_id(int64_t id) {
    out_.vocab.emplace_back(std::move(vocab_key_), id);
    return true;
  }
  bool merge_string(const std::string& s) {
    size_t space = s.find(' ');
    if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos)
      return fail_merge("a merge string must be two tokens separated by one space, found \"" + s + "\"");
    out_.merges.emplace_back(s.substr(0, space), s.substr(space + 1));
    return true;
  }
  bool fail_merge(const std::string& what) {
    error_ = "model.merges[" + std::to_string(out_.merges.size()) + "]: " + what;
    return false;
  }
  bool capture_type_error(const char* kind) {
    if (capture_ == Capture::Vocab)
      error_ = "model.vocab[\"" + vocab_key_ + "\"]: expected an integer id, found " + kind;
    else
      error_ = "model.merges[" + std::to_string(out_.merges.size()) + "]: expected a string \"left right\" or a pair "
               "[left, right], found " + kind;
    return false;
  }

  TokenizerJson& out_;
  nlohmann::detail::json_sax_dom_parser<Json> dom_;
  std::vector<bool> frames_;  // open DOM containers; true for the "model" object
  std::optional<std::string> pending_key_;
  Capture capture_ = Capture::None;
  std::string vocab_key_;
  std::vector<std::string> pair_;
  std::string error_;
};

}  // namespace

TokenizerJson parse_tokenizer_json(std::string_view text, const std::string& display_name) {
  TokenizerJson out;
  Reader reader(out);
  bool ok = Json::sax_parse(text.begin(), text.end(), &reader);
  if (!ok) {
    std::string why = reader.error().empty() ? "not valid JSON" : reader.error();
    if (why.rfind("not valid JSON", 0) == 0 && text.find_first_not_of(" \t\r\n") == std::string_view::npos)
      why = "the file is empty";
    fail(MOE_ERR_FORMAT, display_name + ": " + why);
  }
  return out;
}

std::string read_file(const std::string& path, const std::string& display_name) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) fail(MOE_ERR_IO, display_name + ": cannot open: " + std::strerror(errno));
  std::string text;
  if (std::fseek(f, 0, SEEK_END) == 0) {
    long size = std::ftell(f);
    if (size > 0) text.reserve(static_cast<size_t>(size));
    std::rewind(f);
  }
  char buffer[1 << 16];
  size_t got = 0;
  while ((got = std::fread(buffer, 1, sizeof(buffer), f)) > 0) text.append(buffer, got);
  bool failed = std::ferror(f) != 0;
  int error = errno;
  std::fclose(f);
  if (failed) fail(MOE_ERR_IO, display_name + ": read error: " + std::strerror(error));
  return text;
}

}  // namespace moe::text
