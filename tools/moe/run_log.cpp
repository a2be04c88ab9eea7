#include "run_log.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>
#include <stdexcept>

namespace cli {

RunLog::RunLog(const std::string& out_dir, int64_t total_steps, int64_t tokens_per_step, bool resume)
    : out_dir_(out_dir),
      metrics_(out_dir + "/metrics.jsonl", resume ? std::ios::app : std::ios::trunc),
      total_steps_(total_steps),
      tokens_per_step_(tokens_per_step),
      start_(std::chrono::steady_clock::now()),
      tty_(isatty(STDERR_FILENO)) {
  if (!metrics_) throw std::runtime_error("cannot write " + out_dir + "/metrics.jsonl");
}

void RunLog::step(const moe_train_stats& s) {
  if (first_step_ < 0) first_step_ = s.step - 1;
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double done = static_cast<double>(s.step - first_step_);
  const double tokens_per_s = elapsed > 0 ? done * static_cast<double>(tokens_per_step_) / elapsed : 0;
  const double eta = done > 0 ? elapsed / done * static_cast<double>(total_steps_ - s.step) : 0;
  char line[320];
  std::snprintf(line, sizeof line,
                "{\"step\": %lld, \"loss\": %.6f, \"aux_loss\": %.6f, \"grad_norm\": %.6f, \"lr\": %.8g, "
                "\"tokens_per_s\": %.1f, \"expert_balance\": %.4f, \"dropped_fraction\": %.6f, \"skipped\": %s}",
                static_cast<long long>(s.step), s.loss, s.aux_loss, s.grad_norm, s.lr, tokens_per_s, s.expert_balance,
                s.dropped_fraction, s.skipped ? "true" : "false");
  metrics_ << line << "\n";
  metrics_.flush();
  train_.emplace_back(s.step, s.loss);
  const int width = 24;
  const int filled = total_steps_ > 0 ? static_cast<int>(width * s.step / total_steps_) : width;
  std::string bar(static_cast<size_t>(std::clamp(filled, 0, width)), '#');
  bar.resize(width, '.');
  std::fprintf(stderr, "%s[%s] step %lld/%lld  loss %.4f  %.0f tok/s  ETA %d:%02d%s", tty_ ? "\r" : "", bar.c_str(),
               static_cast<long long>(s.step), static_cast<long long>(total_steps_), s.loss, tokens_per_s,
               static_cast<int>(eta) / 60, static_cast<int>(eta) % 60, tty_ ? "  " : "\n");
  std::fflush(stderr);
}

void RunLog::evaluation(int64_t step, double loss) {
  char line[128];
  std::snprintf(line, sizeof line, "{\"step\": %lld, \"eval_loss\": %.6f}", static_cast<long long>(step), loss);
  metrics_ << line << "\n";
  metrics_.flush();
  eval_.emplace_back(step, loss);
  std::fprintf(stderr, "%sstep %lld: evaluation loss %.4f\n", tty_ ? "\n" : "", static_cast<long long>(step), loss);
}

void RunLog::finish() {
  if (tty_) std::fputc('\n', stderr);
  write_plot();
}

void RunLog::write_plot() const {
  std::ofstream svg(out_dir_ + "/loss.svg", std::ios::trunc);
  svg << loss_plot_svg(train_, eval_);
  if (!svg) throw std::runtime_error("cannot write " + out_dir_ + "/loss.svg");
}

std::string loss_plot_svg(const std::vector<std::pair<int64_t, double>>& train,
                          const std::vector<std::pair<int64_t, double>>& eval) {
  const double w = 640, h = 400, left = 60, right = 20, top = 30, bottom = 50;
  double x_min = 1e300, x_max = -1e300, y_min = 1e300, y_max = -1e300;
  for (const auto* series : {&train, &eval})
    for (const auto& [step, loss] : *series) {
      if (!std::isfinite(loss)) continue;
      x_min = std::min(x_min, static_cast<double>(step));
      x_max = std::max(x_max, static_cast<double>(step));
      y_min = std::min(y_min, loss);
      y_max = std::max(y_max, loss);
    }
  if (x_min > x_max) x_min = 0, x_max = 1, y_min = 0, y_max = 1;
  if (x_max == x_min) x_max = x_min + 1;
  if (y_max == y_min) y_max = y_min + 1;
  auto px = [&](double x) { return left + (x - x_min) / (x_max - x_min) * (w - left - right); };
  auto py = [&](double y) { return top + (y_max - y) / (y_max - y_min) * (h - top - bottom); };
  std::ostringstream s;
  s << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << w << "\" height=\"" << h << "\" font-family=\"sans-serif\" font-size=\"12\">\n"
    << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    << "<text x=\"" << w / 2 << "\" y=\"18\" text-anchor=\"middle\">loss</text>\n"
    << "<line x1=\"" << left << "\" y1=\"" << h - bottom << "\" x2=\"" << w - right << "\" y2=\"" << h - bottom << "\" stroke=\"black\"/>\n"
    << "<line x1=\"" << left << "\" y1=\"" << top << "\" x2=\"" << left << "\" y2=\"" << h - bottom << "\" stroke=\"black\"/>\n";
  for (int i = 0; i <= 4; ++i) {
    const double y = y_min + (y_max - y_min) * i / 4, x = x_min + (x_max - x_min) * i / 4;
    s << "<text x=\"" << left - 6 << "\" y=\"" << py(y) + 4 << "\" text-anchor=\"end\">" << std::round(y * 100) / 100 << "</text>\n"
      << "<text x=\"" << px(x) << "\" y=\"" << h - bottom + 18 << "\" text-anchor=\"middle\">" << std::llround(x) << "</text>\n";
  }
  s << "<text x=\"" << w / 2 << "\" y=\"" << h - 8 << "\" text-anchor=\"middle\">step</text>\n";
  auto polyline = [&](const std::vector<std::pair<int64_t, double>>& series, const char* color) {
    s << "<polyline fill=\"none\" stroke=\"" << color << "\" stroke-width=\"1.5\" points=\"";
    for (const auto& [step, loss] : series)
      if (std::isfinite(loss)) s << px(static_cast<double>(step)) << "," << py(loss) << " ";
    s << "\"/>\n";
  };
  polyline(train, "#1f77b4");
  polyline(eval, "#d62728");
  s << "<text x=\"" << w - right - 150 << "\" y=\"" << top + 14 << "\" fill=\"#1f77b4\">training loss</text>\n"
    << "<text x=\"" << w - right - 150 << "\" y=\"" << top + 30 << "\" fill=\"#d62728\">evaluation loss</text>\n</svg>\n";
  return s.str();
}

}  // namespace cli
