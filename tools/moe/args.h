// Command-line flags: `--name value` and `--flag` pairs after the command word. Every flag a command
// does not consume is reported as an error, so typos never pass silently.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "moe/moe.hpp"

namespace cli {

class Args {
 public:
  Args(int argc, char** argv, int first);

  bool flag(const std::string& name);                       // --name present (no value)
  std::string value(const std::string& name, const std::string& fallback = "");
  std::vector<std::string> values(const std::string& name);  // every occurrence
  bool has(const std::string& name) const;
  int64_t integer(const std::string& name, int64_t fallback);
  double number(const std::string& name, double fallback);
  // The positional arguments (taken: finish() no longer reports them).
  std::vector<std::string> take_positional();
  // Throws std::runtime_error naming any flag nobody asked for.
  void finish() const;

 private:
  std::multimap<std::string, std::string> values_;
  std::map<std::string, bool> used_;
  std::vector<std::string> positional_;
};

// "1,2,3" -> {1, 2, 3}; throws std::runtime_error naming the bad item.
std::vector<int32_t> parse_ids(const std::string& text, const std::string& flag);

// A context from the common flags --backend, --threads, --plugin-dir.
moe::context make_context(Args& args);
// Load options from --dtype.
moe::model::load_options model_options(Args& args);

}  // namespace cli
