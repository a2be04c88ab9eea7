#include "args.h"

#include <stdexcept>

namespace cli {
namespace {
// Flags that never take a value, so `--verbose DIR` leaves DIR positional.
bool is_boolean_flag(const std::string& name) {
  return name == "special" || name == "skip-special" || name == "verbose" || name == "no-shuffle" || name == "resume" ||
         name == "lora-experts" || name == "merge-lora";
}
}  // namespace

Args::Args(int argc, char** argv, int first) {
  for (int i = first; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--", 0) == 0 && a.size() > 2) {
      std::string name = a.substr(2), val;
      auto eq = name.find('=');
      bool has_value = false;
      if (eq != std::string::npos) {
        val = name.substr(eq + 1);
        name = name.substr(0, eq);
        has_value = true;
      } else if (!is_boolean_flag(name) && i + 1 < argc && std::string(argv[i + 1]).rfind("--", 0) != 0) {
        val = argv[++i];
        has_value = true;
      }
      values_.emplace(name, has_value ? val : std::string("\x01"));  // \x01 marks "no value"
      used_[name] = false;
    } else {
      positional_.push_back(a);
    }
  }
}

bool Args::has(const std::string& name) const { return values_.count(name) > 0; }

bool Args::flag(const std::string& name) {
  if (!has(name)) return false;
  used_[name] = true;
  if (values_.find(name)->second != "\x01")
    throw std::runtime_error("--" + name + " takes no value");
  return true;
}

std::string Args::value(const std::string& name, const std::string& fallback) {
  auto it = values_.find(name);
  if (it == values_.end()) return fallback;
  used_[name] = true;
  if (it->second == "\x01") throw std::runtime_error("--" + name + " needs a value");
  return it->second;
}

std::vector<std::string> Args::values(const std::string& name) {
  std::vector<std::string> out;
  auto range = values_.equal_range(name);
  for (auto it = range.first; it != range.second; ++it) {
    if (it->second == "\x01") throw std::runtime_error("--" + name + " needs a value");
    out.push_back(it->second);
  }
  used_[name] = true;
  return out;
}

int64_t Args::integer(const std::string& name, int64_t fallback) {
  if (!has(name)) return fallback;
  std::string v = value(name);
  try {
    size_t used = 0;
    long long n = std::stoll(v, &used);
    if (used != v.size()) throw std::invalid_argument(v);
    return n;
  } catch (const std::exception&) {
    throw std::runtime_error("--" + name + " expects an integer, got '" + v + "'");
  }
}

double Args::number(const std::string& name, double fallback) {
  if (!has(name)) return fallback;
  std::string v = value(name);
  try {
    size_t used = 0;
    double n = std::stod(v, &used);
    if (used != v.size()) throw std::invalid_argument(v);
    return n;
  } catch (const std::exception&) {
    throw std::runtime_error("--" + name + " expects a number, got '" + v + "'");
  }
}

std::vector<std::string> Args::take_positional() {
  std::vector<std::string> out;
  out.swap(positional_);
  return out;
}

void Args::finish() const {
  for (const auto& [name, used] : used_)
    if (!used) throw std::runtime_error("unknown option --" + name);
  if (!positional_.empty()) throw std::runtime_error("unexpected argument '" + positional_.front() + "'");
}

std::vector<int32_t> parse_ids(const std::string& text, const std::string& flag) {
  std::vector<int32_t> ids;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    std::string item = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    try {
      size_t used = 0;
      long long v = std::stoll(item, &used);
      if (used != item.size() || v < INT32_MIN || v > INT32_MAX) throw std::invalid_argument(item);
      ids.push_back(static_cast<int32_t>(v));
    } catch (const std::exception&) {
      throw std::runtime_error("--" + flag + ": '" + item + "' is not a token id (expected e.g. 1,2,3)");
    }
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return ids;
}

moe::context make_context(Args& args) {
  moe::context::options o;
  o.backend = args.value("backend", "auto");
  o.num_threads = static_cast<int32_t>(args.integer("threads", 0));
  o.plugin_dirs = args.values("plugin-dir");
  if (args.flag("verbose")) o.log_level = MOE_LOG_INFO;
  return moe::context(o);
}

moe::model::load_options model_options(Args& args) {
  moe::model::load_options o;
  std::string dtype = args.value("dtype", "auto");
  if (dtype == "f32")
    o.dtype = MOE_LOAD_DTYPE_F32;
  else if (dtype == "bf16")
    o.dtype = MOE_LOAD_DTYPE_BF16;
  else if (dtype != "auto")
    throw std::runtime_error("--dtype must be f32, bf16 or auto, got '" + dtype + "'");
  return o;
}

}  // namespace cli
