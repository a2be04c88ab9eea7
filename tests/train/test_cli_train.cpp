// `moe train` and `moe finetune` as a user runs them: every flag the training issue names is accepted
// and shapes the run (steps, learning-rate schedule, data order, capacity), --data takes a UTF-8 text
// file or a .safetensors file with int64 input_ids and optional labels (-100 ignored), and each run
// leaves metrics.jsonl (per step: loss, lr, expert_balance, dropped_fraction) and expert_load.json.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const std::string kSource = MOE_SOURCE_DIR;

fs::path scratch(const std::string& name) {
  fs::path p = fs::temp_directory_path() / ("moe_cli_train_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

// A .safetensors file of int64 tensors (name -> shape, values).
void write_i64_safetensors(const fs::path& path,
                           const std::vector<std::tuple<std::string, std::vector<int64_t>, std::vector<int64_t>>>& tensors) {
  json header = json::object();
  uint64_t offset = 0;
  for (const auto& [name, shape, values] : tensors) {
    header[name] = {{"dtype", "I64"}, {"shape", shape}, {"data_offsets", {offset, offset + values.size() * 8}}};
    offset += values.size() * 8;
  }
  std::string text = header.dump();
  std::ofstream f(path, std::ios::binary);
  const uint64_t n = text.size();
  f.write(reinterpret_cast<const char*>(&n), 8);
  f << text;
  for (const auto& t : tensors) f.write(reinterpret_cast<const char*>(std::get<2>(t).data()), std::get<2>(t).size() * 8);
}

struct CliRun {
  int status = -1;
  std::string log;  // stderr and stdout
};

// Runs the moe CLI with `args` (on the CPU backend of the build tree).
CliRun moe(const std::string& args, const fs::path& dir) {
  const fs::path log = dir / "cli.log";
  const std::string cmd = std::string(MOE_CLI) + " " + args + " --backend cpu --plugin-dir " +
                          std::getenv("MOE_PLUGIN_DIR") + " > " + log.string() + " 2>&1";
  CliRun r;
  const int raw = std::system(cmd.c_str());
  r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  std::ifstream in(log);
  r.log.assign(std::istreambuf_iterator<char>(in), {});
  return r;
}

std::vector<json> metrics(const fs::path& out) {
  std::vector<json> lines;
  std::ifstream in(out / "metrics.jsonl");
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) lines.push_back(json::parse(line));
  return lines;
}

std::vector<int64_t> random_ids(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<int64_t> v(n);
  for (auto& x : v) x = rng() % 320;
  return v;
}

TEST(CliTrain, EveryIssueFlagIsAcceptedAndShapesTheRun) {
  fs::path dir = scratch("flags"), out = dir / "run";
  write_i64_safetensors(dir / "data.safetensors", {{"input_ids", {6, 10}, random_ids(60, 1)}});
  const std::string common = "--config " + kSource + "/tests/reference/mixtral/config.json --data " +
                             (dir / "data.safetensors").string() + " --out " + out.string() +
                             " --steps 3 --batch-size 2 --lr 2e-3 --weight-decay 0.01 --beta1 0.8 --beta2 0.95 --eps 1e-7"
                             " --clip 0.5 --warmup 1 --schedule cosine --seed 4 --no-shuffle";
  CliRun r = moe("train " + common + " --capacity-factor 0.5", dir);
  ASSERT_EQ(r.status, 0) << r.log;
  std::vector<json> m = metrics(out);
  ASSERT_EQ(m.size(), 3u) << r.log;
  // Warmup of one step to 2e-3, then cosine to 0 at step 3.
  const double lr[] = {2e-3, 1e-3, 0.0};
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(m[i]["step"], i + 1);
    EXPECT_NEAR(m[i]["lr"].get<double>(), lr[i], 1e-9);
    EXPECT_GE(m[i]["expert_balance"].get<double>(), 1.0);
    // Capacity ceil(0.5 * 20 * 2 / 8) = 3 of a mean load of 5: at least 16 of 40 assignments dropped.
    EXPECT_GE(m[i]["dropped_fraction"].get<double>(), 0.4);
  }
  std::ifstream f(out / "expert_load.json");
  json load = json::parse(f);
  EXPECT_EQ(load["step"], 3);
  EXPECT_EQ(load["num_experts"], 8);
  EXPECT_EQ(load["capacity_factor"], 0.5);
  ASSERT_EQ(load["layers"].size(), 2u);
  for (const json& layer : load["layers"]) {
    int64_t total = 0, mx = 0;
    for (int64_t x : layer["tokens_per_expert"]) total += x, mx = std::max(mx, x);
    EXPECT_EQ(total, 3 * 2 * 10 * 2) << "3 steps of 2 x 10 tokens, 2 experts each";
    EXPECT_EQ(layer["total"], total);
    EXPECT_EQ(layer["max"], mx);
    EXPECT_DOUBLE_EQ(layer["max_over_mean"].get<double>(), mx / (total / 8.0));
  }
  EXPECT_NE(r.log.find("max/mean"), std::string::npos) << r.log;

  // --no-shuffle and --seed decide the batches: the same flags give the same losses; shuffling differs.
  CliRun again = moe("train " + common + " --capacity-factor 0.5", dir);
  ASSERT_EQ(again.status, 0) << again.log;
  std::vector<json> m2 = metrics(out);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(m2[i]["loss"], m[i]["loss"]);
  std::string shuffled = common;
  shuffled.erase(shuffled.find(" --no-shuffle"));
  CliRun s = moe("train " + shuffled + " --capacity-factor 0.5", dir);
  ASSERT_EQ(s.status, 0) << s.log;
  std::vector<json> m3 = metrics(out);
  bool differs = false;
  for (int i = 1; i < 3; ++i) differs |= m3[i]["loss"] != m[i]["loss"];
  EXPECT_TRUE(differs) << "shuffling did not change the batches";

  // A misspelt flag is an error that names it.
  CliRun bad = moe("train " + common + " --capacity-factr 0.5", dir);
  EXPECT_NE(bad.status, 0);
  EXPECT_NE(bad.log.find("capacity-factr"), std::string::npos) << bad.log;
  CliRun finetune = moe("finetune --model " + out.string() + " --data " + (dir / "data.safetensors").string() + " --out " +
                         (dir / "lora").string() +
                         " --steps 2 --batch-size 2 --lora-rank 2 --lora-experts --merge-lora --capacity-factor 1.25",
                     dir);
  ASSERT_EQ(finetune.status, 0) << finetune.log;
  EXPECT_EQ(metrics(dir / "lora").size(), 2u);
  EXPECT_TRUE(fs::exists(dir / "lora" / "expert_load.json"));
  fs::remove_all(dir);
}

TEST(CliTrain, SafetensorsLabelsAreUsedAndMinus100IsIgnored) {
  fs::path dir = scratch("labels");
  auto ids = random_ids(40, 2);
  std::vector<int64_t> masked = ids;
  for (size_t i = 0; i < masked.size(); i += 2) masked[i] = -100;
  write_i64_safetensors(dir / "ids.safetensors", {{"input_ids", {4, 10}, ids}});
  write_i64_safetensors(dir / "same.safetensors", {{"input_ids", {4, 10}, ids}, {"labels", {4, 10}, ids}});
  write_i64_safetensors(dir / "masked.safetensors", {{"input_ids", {4, 10}, ids}, {"labels", {4, 10}, masked}});
  auto first_loss = [&](const std::string& data) {
    CliRun r = moe("train --config " + kSource + "/tests/reference/mixtral/config.json --data " + (dir / data).string() +
                    " --out " + (dir / "out").string() + " --steps 1 --batch-size 4 --seed 1",
                dir);
    EXPECT_EQ(r.status, 0) << r.log;
    auto m = metrics(dir / "out");
    return m.empty() ? json() : m[0]["loss"];
  };
  const json plain = first_loss("ids.safetensors");
  EXPECT_EQ(first_loss("same.safetensors"), plain) << "labels equal to the ids must give the ids' loss";
  EXPECT_NE(first_loss("masked.safetensors"), plain) << "labels of -100 were not ignored";
  // Every label ignored: nothing to learn from, and the run says so by a zero loss rather than failing.
  std::vector<int64_t> none(40, -100);
  write_i64_safetensors(dir / "none.safetensors", {{"input_ids", {4, 10}, ids}, {"labels", {4, 10}, none}});
  EXPECT_EQ(first_loss("none.safetensors"), 0.0);
  fs::remove_all(dir);
}

TEST(CliTrain, Utf8TextDataIsTokenized) {
  fs::path dir = scratch("text");
  {
    std::ofstream f(dir / "corpus.txt");
    for (int i = 0; i < 40; ++i)
      f << "Größe und Ähnlichkeit — naïve café, 東京 " << i << ".\n\nThe quick brown fox jumps over the lazy dog.\n\n";
  }
  // A small model over the tokenizer's 4000 ids.
  std::ofstream(dir / "config.json") << R"({"model_type": "mixtral", "vocab_size": 4000, "hidden_size": 32,
    "intermediate_size": 48, "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1,
    "num_local_experts": 4, "num_experts_per_tok": 2, "max_position_embeddings": 64, "rms_norm_eps": 1e-5,
    "rope_theta": 10000.0, "tie_word_embeddings": false, "initializer_range": 0.02, "hidden_act": "silu"})";
  CliRun r = moe("train --config " + (dir / "config.json").string() + " --tokenizer " + kSource +
                  "/tests/text/data/sp_bpe/tokenizer.json --data " + (dir / "corpus.txt").string() + " --out " +
                  (dir / "out").string() + " --steps 1 --batch-size 2 --seq-len 16",
              dir);
  ASSERT_EQ(r.status, 0) << r.log;
  EXPECT_NE(r.log.find("training sequences of 16 tokens"), std::string::npos) << r.log;
  EXPECT_EQ(metrics(dir / "out").size(), 1u);
  fs::remove_all(dir);
}

}  // namespace
