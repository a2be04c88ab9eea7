// Plugin discovery through the public API: bad candidates are refused with a clear reason, the
// context still starts on a good backend, and an empty search path is a clear error.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "moe/moe.hpp"
#include "moe/moe_plugin.h"

namespace {

std::string real_plugins() { return std::getenv("MOE_PLUGIN_DIR"); }
std::string test_dir(const char* name) { return std::string(MOE_TEST_PLUGINS_DIR) + "/" + name; }

// A context over `dir` then the real plugins; returns the record of the candidate found in `dir`.
moe::plugin_info candidate_in(const std::string& dir) {
  moe::context::options o;
  o.plugin_dirs = {dir, real_plugins()};
  o.search_default_dirs = false;
  o.log_level = MOE_LOG_ERROR;
  moe::context ctx(o);
  EXPECT_EQ(ctx.backend(), "cpu");
  for (const auto& p : ctx.plugins())
    if (p.path.rfind(dir, 0) == 0) return p;
  ADD_FAILURE() << "no candidate from " << dir;
  return {};
}

TEST(Plugins, LibraryWithoutEntrySymbolIsRefused) {
  auto p = candidate_in(test_dir("no_entry"));
  EXPECT_EQ(p.state, MOE_PLUGIN_STATE_REJECTED);
  EXPECT_NE(p.reason.find("moe_plugin_entry"), std::string::npos) << p.reason;
}

TEST(Plugins, OtherAbiMajorIsRefused) {
  auto p = candidate_in(test_dir("abi_major_2"));
  EXPECT_EQ(p.state, MOE_PLUGIN_STATE_REJECTED);
  EXPECT_EQ(p.abi_version, 2u << 16);
  EXPECT_NE(p.reason.find("ABI 2.0"), std::string::npos) << p.reason;
  const std::string ours = "ABI " + std::to_string(MOE_PLUGIN_ABI_MAJOR) + "." + std::to_string(MOE_PLUGIN_ABI_MINOR);
  EXPECT_NE(p.reason.find(ours), std::string::npos) << p.reason;
}

TEST(Plugins, ZeroScoreIsUnusable) {
  auto p = candidate_in(test_dir("zero_score"));
  EXPECT_EQ(p.state, MOE_PLUGIN_STATE_UNUSABLE);
  EXPECT_EQ(p.name, "fake");
  EXPECT_EQ(p.score, 0);
  EXPECT_NE(p.reason.find("score is 0"), std::string::npos) << p.reason;
}

TEST(Plugins, ZeroScoreBackendCannotBeChosenByName) {
  moe::context::options o;
  o.backend = "fake";
  o.plugin_dirs = {test_dir("zero_score"), real_plugins()};
  o.search_default_dirs = false;
  o.log_level = MOE_LOG_ERROR;
  try {
    moe::context ctx(o);
    FAIL() << "a backend that cannot run was chosen";
  } catch (const moe::error& e) {
    EXPECT_EQ(e.status(), MOE_ERR_PLUGIN);
    EXPECT_NE(std::string(e.what()).find("score is 0"), std::string::npos) << e.what();
  }
}

TEST(Plugins, NullDescriptorIsRefused) {
  auto p = candidate_in(test_dir("null_descriptor"));
  EXPECT_EQ(p.state, MOE_PLUGIN_STATE_REJECTED);
  EXPECT_NE(p.reason.find("no descriptor"), std::string::npos) << p.reason;
}

TEST(Plugins, FileThatIsNotALibraryIsRefused) {
  auto p = candidate_in(test_dir("not_a_library"));
  EXPECT_EQ(p.state, MOE_PLUGIN_STATE_REJECTED);
  EXPECT_NE(p.reason.find("could not be loaded"), std::string::npos) << p.reason;
}

TEST(Plugins, EmptyPluginPathIsAClearError) {
  moe_context_options o;
  moe_context_options_init(&o);
  std::string empty = test_dir("empty");
  const char* dirs[] = {empty.c_str()};
  o.plugin_dirs = dirs;
  o.num_plugin_dirs = 1;
  o.search_default_dirs = 0;
  moe_context* ctx = nullptr;
  EXPECT_EQ(moe_context_create(&o, &ctx), MOE_ERR_PLUGIN);
  EXPECT_EQ(ctx, nullptr);
  std::string msg = moe_last_error_message();
  EXPECT_NE(msg.find("no usable backend"), std::string::npos) << msg;
  EXPECT_NE(msg.find(empty), std::string::npos) << msg;
}

TEST(Plugins, EnvironmentPathIsSearched) {
  // MOE_PLUGIN_PATH with empty entries and a missing folder: those are skipped, the real folder used.
  std::string value = "::/no/such/folder:" + real_plugins() + ":";
  setenv("MOE_PLUGIN_PATH", value.c_str(), 1);
  moe_context_options o;
  moe_context_options_init(&o);
  o.backend = "cpu";
  moe_context* ctx = nullptr;
  moe_status s = moe_context_create(&o, &ctx);
  unsetenv("MOE_PLUGIN_PATH");
  ASSERT_EQ(s, MOE_OK) << moe_last_error_message();
  EXPECT_STREQ(moe_context_backend(ctx), "cpu");
  moe_context_free(ctx);
}

TEST(Plugins, UnknownBackendNameIsAClearError) {
  moe::context::options o;
  o.backend = "tpu";
  o.plugin_dirs = {real_plugins()};
  o.search_default_dirs = false;
  try {
    moe::context ctx(o);
    FAIL();
  } catch (const moe::error& e) {
    EXPECT_EQ(e.status(), MOE_ERR_PLUGIN);
    EXPECT_NE(std::string(e.what()).find("'tpu'"), std::string::npos) << e.what();
  }
}

TEST(Plugins, ListReportsTheRealBackend) {
  moe::context::options o;
  o.plugin_dirs = {real_plugins()};
  o.search_default_dirs = false;
  moe::context ctx(o);
  bool found = false;
  for (const auto& p : ctx.plugins())
    if (p.name == "cpu" && p.kind == MOE_PLUGIN_KIND_BACKEND) {
      found = true;
      EXPECT_EQ(p.state, MOE_PLUGIN_STATE_LOADED);
      EXPECT_EQ(p.abi_version, MOE_PLUGIN_ABI_VERSION);
      EXPECT_GE(p.score, 1);
    }
  EXPECT_TRUE(found);
}

}  // namespace
