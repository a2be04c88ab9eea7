#include "compiled_regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "text_error.h"
#include "onig_pattern.h"
#include "utf8.h"

namespace moe::text {
namespace {

// Bounds for hostile patterns: backtracking beyond these is an error, not a hang.
constexpr uint32_t kMatchLimit = 50'000'000;
constexpr size_t kJitStackMax = 8u << 20;

std::string pcre2_message(int code) {
  PCRE2_UCHAR buffer[256];
  pcre2_get_error_message(code, buffer, sizeof(buffer));
  return reinterpret_cast<const char*>(buffer);
}

// One match data block, match context and JIT stack per thread: matching only reads the compiled
// pattern, so one Regex serves every thread.
struct ThreadMatchState {
  pcre2_match_data* data = pcre2_match_data_create(1, nullptr);
  pcre2_match_context* context = pcre2_match_context_create(nullptr);
  pcre2_jit_stack* stack = pcre2_jit_stack_create(32 * 1024, kJitStackMax, nullptr);
  ThreadMatchState() {
    if (!data || !context || !stack) throw std::bad_alloc();
    pcre2_set_match_limit(context, kMatchLimit);
    pcre2_jit_stack_assign(context, nullptr, stack);
  }
  ~ThreadMatchState() {
    pcre2_jit_stack_free(stack);
    pcre2_match_context_free(context);
    pcre2_match_data_free(data);
  }
  ThreadMatchState(const ThreadMatchState&) = delete;
  ThreadMatchState& operator=(const ThreadMatchState&) = delete;
};

ThreadMatchState& thread_state() {
  thread_local ThreadMatchState state;
  return state;
}

}  // namespace

struct Regex::Compiled {
  std::string source;  // as written in tokenizer.json, for messages
  std::string literal;  // non-empty: match this text, no PCRE2
  pcre2_code* code = nullptr;
  bool jit = false;
  bool subject_checked = true;  // false: subjects may be ill-formed UTF-8
  ~Compiled() { pcre2_code_free(code); }
};

Regex Regex::onig(const std::string& pattern, const std::string& where, bool allow_invalid_utf) {
  auto c = std::make_shared<Compiled>();
  c->source = pattern;
  c->subject_checked = !allow_invalid_utf;
  std::string translated = onig_to_pcre2(pattern, where);
  int error = 0;
  PCRE2_SIZE offset = 0;
  pcre2_compile_context* cc = pcre2_compile_context_create(nullptr);
  if (!cc) throw std::bad_alloc();
  pcre2_set_newline(cc, PCRE2_NEWLINE_LF);
  uint32_t options = PCRE2_UTF | PCRE2_UCP | PCRE2_MULTILINE | (allow_invalid_utf ? PCRE2_MATCH_INVALID_UTF : 0);
  c->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(translated.data()), translated.size(), options, &error, &offset, cc);
  pcre2_compile_context_free(cc);
  if (!c->code)
    fail(MOE_ERR_FORMAT, where + ": the regex \"" + pattern + "\" does not compile: " + pcre2_message(error) +
                             " (at offset " + std::to_string(offset) + " of its PCRE2 form \"" + translated + "\")");
  c->jit = pcre2_jit_compile(c->code, PCRE2_JIT_COMPLETE) == 0;
  return Regex(std::move(c));
}

Regex Regex::literal(const std::string& text, const std::string& where) {
  if (text.empty()) fail(MOE_ERR_FORMAT, where + ": an empty string pattern matches nothing; remove it");
  auto c = std::make_shared<Compiled>();
  c->source = text;
  c->literal = text;
  return Regex(std::move(c));
}

size_t Regex::char_length_at(std::string_view s, size_t pos) {
  size_t n = 1;
  while (pos + n < s.size() && is_utf8_continuation(static_cast<unsigned char>(s[pos + n]))) ++n;
  return n;
}

bool Regex::find(std::string_view subject, size_t from, size_t& begin, size_t& end) const {
  const Compiled& c = *compiled_;
  if (!c.literal.empty()) {
    size_t at = subject.find(c.literal, from);
    if (at == std::string_view::npos) return false;
    begin = at;
    end = at + c.literal.size();
    return true;
  }
  ThreadMatchState& state = thread_state();
  auto* s = reinterpret_cast<PCRE2_SPTR>(subject.data());
  int rc = c.jit && c.subject_checked
               ? pcre2_jit_match(c.code, s, subject.size(), from, 0, state.data, state.context)
               : pcre2_match(c.code, s, subject.size(), from, c.subject_checked ? PCRE2_NO_UTF_CHECK : 0, state.data,
                             state.context);
  if (rc == PCRE2_ERROR_NOMATCH) return false;
  if (rc == PCRE2_ERROR_MATCHLIMIT || rc == PCRE2_ERROR_JIT_STACKLIMIT || rc == PCRE2_ERROR_DEPTHLIMIT ||
      rc == PCRE2_ERROR_HEAPLIMIT)
    fail(MOE_ERR_LIMIT, "the tokenizer's regex \"" + c.source + "\" gave up on this input (" + pcre2_message(rc) +
                            "): the pattern backtracks too much");
  if (rc < 0) fail(MOE_ERR_INTERNAL, "the tokenizer's regex \"" + c.source + "\" failed: " + pcre2_message(rc));
  PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(state.data);
  begin = ovector[0];
  end = ovector[1];
  return true;
}

}  // namespace moe::text
