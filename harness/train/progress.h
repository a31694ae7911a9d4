#pragma once
// The progress of one run, on one line: step, loss, accuracy, tokens/s and ETA. On a terminal
// (live) the line is redrawn in place; in logs and CI a plain line is printed per log window.
#include <chrono>
#include <cstdint>
#include <ostream>
#include <string>

#include "harness/train/train_window.h"

namespace m2b {

class Progress {
 public:
  // `first_step`: where this session starts (a resumed run's checkpoint step), for the ETA.
  Progress(std::ostream& out, bool live, std::string label, int64_t total_steps,
           int64_t first_step);
  // Every step; a live line redraws at most five times a second, a plain one not at all.
  void step(int64_t step);
  // A log window closed at `step`: its means become the line's loss, accuracy and tokens/s.
  void window(int64_t step, const TrainWindow& window);
  // A line of its own (evaluation results, the end of the run), after the live line if any.
  void line(const std::string& text);

 private:
  std::string status(int64_t step) const;
  void draw(int64_t step);

  using Clock = std::chrono::steady_clock;
  std::ostream& out_;
  bool live_;
  std::string label_;
  int64_t total_steps_, first_step_;
  Clock::time_point started_, last_draw_;
  bool have_window_ = false;
  double loss_ = 0, accuracy_ = 0, tokens_per_s_ = 0;
  bool line_open_ = false;  // a live line is on screen without its newline
};

// "42s", "3m05s", "1h02m"
std::string format_duration(double seconds);
// "850", "12.3k", "1.2M", "3.4G"
std::string format_count(double n);
// "850 tok/s", "12.3k tok/s", "1.2M tok/s"
std::string format_rate(double tokens_per_s);

}  // namespace m2b
