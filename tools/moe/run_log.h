// What a training run shows and leaves behind: a progress line (step, loss, tokens/s, ETA) on
// stderr, metrics.jsonl (one JSON object per optimizer step and per evaluation), and loss.svg, a plot
// of the training and evaluation loss, next to the checkpoint.
#pragma once

#include <chrono>
#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include "moe/moe.h"

namespace cli {

class RunLog {
 public:
  // Appends to out_dir/metrics.jsonl when resuming, else starts it afresh.
  RunLog(const std::string& out_dir, int64_t total_steps, int64_t tokens_per_step, bool resume);
  void step(const moe_train_stats& s);
  void evaluation(int64_t step, double loss);
  // Ends the progress line and writes loss.svg.
  void finish();

 private:
  void write_plot() const;

  std::string out_dir_;
  std::ofstream metrics_;
  int64_t total_steps_, tokens_per_step_;
  std::chrono::steady_clock::time_point start_;
  int64_t first_step_ = -1;
  bool tty_;
  std::vector<std::pair<int64_t, double>> train_, eval_;
};

// The SVG text of a loss plot (two series: training and evaluation loss over steps).
std::string loss_plot_svg(const std::vector<std::pair<int64_t, double>>& train,
                          const std::vector<std::pair<int64_t, double>>& eval);

}  // namespace cli
