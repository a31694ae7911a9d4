#include "harness/train/progress.h"

#include <fmt/format.h>

#include <cmath>

namespace m2b {

std::string format_duration(double seconds) {
  const auto s = static_cast<int64_t>(std::llround(std::max(0.0, seconds)));
  if (s < 60) return fmt::format("{}s", s);
  if (s < 3600) return fmt::format("{}m{:02}s", s / 60, s % 60);
  return fmt::format("{}h{:02}m", s / 3600, s % 3600 / 60);
}

std::string format_count(double n) {
  // Each unit from where its rounded figure begins, so that 999,960 reads 1.0M, not 1000.0k.
  if (n >= 999.95e6) return fmt::format("{:.1f}G", n / 1e9);
  if (n >= 999.95e3) return fmt::format("{:.1f}M", n / 1e6);
  if (n >= 999.5) return fmt::format("{:.1f}k", n / 1e3);
  return fmt::format("{:.0f}", n);
}

std::string format_rate(double tokens_per_s) { return format_count(tokens_per_s) + " tok/s"; }

Progress::Progress(std::ostream& out, bool live, std::string label, int64_t total_steps,
                   int64_t first_step)
    : out_(out), live_(live), label_(std::move(label)), total_steps_(total_steps),
      first_step_(first_step), started_(Clock::now()), last_draw_(started_) {}

std::string Progress::status(int64_t step) const {
  std::string text = fmt::format("{}  step {}/{}", label_, step, total_steps_);
  if (have_window_)
    text +=
        fmt::format("  loss {:.4f}  acc {:.3f}  {}", loss_, accuracy_, format_rate(tokens_per_s_));
  if (step > first_step_) {
    const double elapsed = std::chrono::duration<double>(Clock::now() - started_).count();
    const double eta = elapsed / static_cast<double>(step - first_step_) *
                       static_cast<double>(total_steps_ - step);
    text += "  ETA " + format_duration(eta);
  }
  return text;
}

void Progress::draw(int64_t step) {
  // \33[K clears what a longer previous line left behind.
  out_ << '\r' << status(step) << "\33[K" << std::flush;
  line_open_ = true;
  last_draw_ = Clock::now();
}

void Progress::step(int64_t step) {
  if (live_ && Clock::now() - last_draw_ >= std::chrono::milliseconds(200)) draw(step);
}

void Progress::window(int64_t step, const TrainWindow& window) {
  have_window_ = true;
  loss_ = window.loss();
  accuracy_ = window.accuracy();
  tokens_per_s_ = window.tokens_per_s();
  if (live_) draw(step);
  else out_ << status(step) << '\n' << std::flush;
}

void Progress::line(const std::string& text) {
  if (line_open_) out_ << "\r\33[K";
  line_open_ = false;
  out_ << text << '\n' << std::flush;
}

}  // namespace m2b
