#include "harness/train/trainer.h"

#include <ATen/detail/CUDAHooksInterface.h>
#include <fmt/format.h>
#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <ctime>

#include "harness/results/provenance.h"
#include "harness/train/batch_stream.h"
#include "harness/train/checkpoint.h"
#include "harness/train/compute.h"
#include "harness/train/evaluator.h"
#include "harness/train/lr_schedule.h"
#include "harness/train/progress.h"
#include "harness/train/run_claim.h"
#include "harness/train/train_step.h"
#include "tasks/registry.h"
#include "tasks/split.h"

namespace m2b {

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

static double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

static std::string utc_now() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

// Metrics lines past the checkpoint belong to a session that died after it: the resumed run
// writes them again. Also cuts a torn last line.
static void keep_metrics_through(const fs::path& run_dir, int64_t step) {
  if (!fs::exists(run_dir / run_files::kMetrics)) return;
  std::string kept;
  for (const json& line : read_metrics(run_dir))
    if (line.value("step", int64_t{0}) <= step) kept += line.dump() + "\n";
  write_atomic(run_dir / run_files::kMetrics, kept);
}

static json provenance(const RunConfig& run, const Compute& compute,
                       const TrainProgress& progress) {
  json p{{"git_sha", kGitSha},
         {"git_dirty", kGitDirty},
         {"libtorch", torch_version()},
         {"cuda", nullptr},
         {"device", compute.device.is_cuda() ? device_name() : "cpu"},
         {"host", host_name()},
         {"seed", run.seed},
         {"eval_seed", run.task.eval_seed},
         {"started_at", progress.started_at},
         {"finished_at", utc_now()}};
  if (compute.device.is_cuda()) {
    const long version = at::detail::getCUDAHooks().versionCUDART();
    p["cuda"] = fmt::format("{}.{}", version / 1000, version % 1000 / 10);
  } else {
    p["cpu_threads"] = torch::get_num_threads();
  }
  return p;
}

namespace {

// The host's counts of the steps whose device sums are not read back yet; they are read at log,
// evaluation and checkpoint steps only, so the host runs ahead of the device in between.
struct PendingStep {
  int64_t step, tokens, scored, rows;
};

class Session {
 public:
  Session(const RunConfig& run, const fs::path& run_dir, const TrainOptions& options)
      : run_(run), train_(run.train), dir_(run_dir), options_(options),
        label_(options.label.empty() ? run.id : options.label), compute_(setup_compute(run.train)),
        task_(tasks::make_task(run.task.name, run.task.params)), split_{run.task.train_min_length,
                                                                        run.task.train_max_length,
                                                                        run.task.eval_lengths} {
    split_.validate();
    if (train_.steps < 1 || train_.batch_size < 1 || train_.log_every < 1 ||
        train_.eval_every < 1 || train_.checkpoint_every < 1)
      throw std::invalid_argument(fmt::format(
          "run {}: train.steps, batch_size, log_every, eval_every and checkpoint_every must be "
          "positive, got {}, {}, {}, {}, {}",
          run.id, train_.steps, train_.batch_size, train_.log_every, train_.eval_every,
          train_.checkpoint_every));
    torch::manual_seed(run.seed);
    model_ = models::LanguageModel(run.model);
    model_->to(compute_.device);
    optimizer_ = std::make_unique<torch::optim::AdamW>(make_adamw(model_, train_));
  }

  std::optional<RunSummary> run() {
    write_config(dir_, run_);
    if (auto restored = load_checkpoint(dir_, run_.id, model_, *optimizer_)) progress_ = *restored;
    else progress_.started_at = utc_now();
    keep_metrics_through(dir_, progress_.step);
    // Which worker, with which build, trained the run from which step: a start, then one resume
    // per later session. summary.json's provenance names only the build that finished the run.
    json session{{"step", progress_.step},
                 {"kind", progress_.step > 0 ? "resume" : "start"},
                 {"worker", this_worker()},
                 {"build", {{"git_sha", kGitSha}, {"git_dirty", kGitDirty}}},
                 {"at", utc_now()}};
    append_metrics(dir_, session);
    step_ = std::make_unique<TrainStep>(model_, *optimizer_, train_, compute_, progress_.step,
                                        options_.cuda_graphs);
    const Evaluator evaluator(*task_, run_.task, train_.batch_size, compute_);
    const LengthCurriculum curriculum{train_.curriculum_steps, train_.curriculum_start_length};
    const int64_t min_cols = task_->token_count(curriculum.shortest(split_));
    const int64_t max_cols = task_->token_count(split_.train_max);
    const bool pad = step_->graphs_on();
    BatchStream batches(
        *task_, split_, train_.batch_size, run_.seed, progress_.step + 1, train_.steps,
        [=](int64_t cols) {
          return pad ? TrainStep::bucket_columns(cols, min_cols, max_cols) : cols;
        },
        compute_.device.is_cuda(), curriculum);

    std::ostream null_stream(nullptr);
    Progress bar(options_.progress ? *options_.progress : null_stream, options_.live_progress,
                 label_, train_.steps, progress_.step);
    if (progress_.step > 0)
      bar.line(fmt::format("{}  resuming from step {}", label_, progress_.step));
    session_start_ = mark_ = Clock::now();
    bool stopped_early = false;
    std::optional<int64_t> diverged;
    for (int64_t step = progress_.step + 1; step <= train_.steps; ++step) {
      const HostBatch batch = batches.next();
      step_->run(batch, learning_rate(train_, step));
      pending_.push_back({step, batch.tokens, batch.scored_count, batch.rows});
      bar.step(step);
      const bool last = step == train_.steps;
      const bool log_due = step % train_.log_every == 0 || last;
      const bool eval_due = step % train_.eval_every == 0 && !last;
      const bool checkpoint_due = step % train_.checkpoint_every == 0 && !last;
      const bool stop = options_.stop_requested && options_.stop_requested(step);
      if (!(log_due || eval_due || checkpoint_due || stop)) continue;

      diverged = read_pending();
      if (diverged) break;
      if (log_due) {
        log_window(step, bar);
        stopped_early = on_target_long_enough(step) && !last;
        progress_.window = TrainWindow{};
        if (stopped_early) break;
      }
      if (eval_due) log_evaluation(step, evaluator.evaluate(model_), bar);
      if (checkpoint_due || stop) {
        progress_.elapsed_s += seconds_since(session_start_);
        session_start_ = Clock::now();
        step_->prepare_checkpoint();
        save_checkpoint(dir_, run_.id, model_, *optimizer_, progress_);
      }
      if (stop) return std::nullopt;
      mark_ = Clock::now();  // evaluation and checkpoint time is not training time
    }

    RunSummary summary = make_summary(stopped_early, diverged);
    if (!diverged) {
      summary.eval = evaluator.evaluate(model_);
      log_evaluation(progress_.step, summary.eval, bar);
    }
    progress_.elapsed_s += seconds_since(session_start_);
    summary.wall_s = progress_.elapsed_s;
    summary.provenance = provenance(run_, compute_, progress_);
    write_summary(dir_, summary);
    fs::remove(checkpoint_path(dir_));
    bar.line(ending(summary));
    return summary;
  }

 private:
  // Whether the log window ending at `step` reached train.target_accuracy, as every window since
  // the stretch's first did for at least train.target_patience_steps steps: the early stop. A
  // window with steps of the length curriculum in it does not count: its sequences were shorter
  // than the training range, which a run stopped then would never have trained at.
  bool on_target_long_enough(int64_t step) {
    const bool in_curriculum = step - train_.log_every < train_.curriculum_steps;
    if (in_curriculum || progress_.window.accuracy() < train_.target_accuracy) {
      progress_.on_target_since = -1;
      return false;
    }
    if (progress_.on_target_since < 0) progress_.on_target_since = step;
    return step - progress_.on_target_since >= train_.target_patience_steps;
  }

  // Adds the pending steps to the window; the first step whose loss is not finite, if any.
  std::optional<int64_t> read_pending() {
    const StepTotals totals = step_->take_totals();
    const double seconds = seconds_since(mark_);
    progress_.train_s += seconds;
    progress_.window.seconds += seconds;
    mark_ = Clock::now();
    TrainWindow& w = progress_.window;
    for (const PendingStep& p : pending_) {
      if (totals.first_nonfinite_step && p.step >= *totals.first_nonfinite_step) break;
      w.steps += 1;
      w.tokens += p.tokens;
      w.scored += p.scored;
      w.sequences += p.rows;
      progress_.tokens += p.tokens;
      progress_.step = p.step;
    }
    pending_.clear();
    if (totals.first_nonfinite_step) return totals.first_nonfinite_step;
    w.correct += static_cast<int64_t>(totals.correct);
    w.sequences_correct += static_cast<int64_t>(totals.sequences_correct);
    w.loss_sum += totals.loss_sum;
    return std::nullopt;
  }

  double run_seconds() const { return progress_.elapsed_s + seconds_since(session_start_); }

  void log_window(int64_t step, Progress& bar) {
    const TrainWindow& w = progress_.window;
    append_metrics(dir_, json{{"step", step},
                              {"kind", "train"},
                              {"loss", w.loss()},
                              {"accuracy", w.accuracy()},
                              {"sequence_accuracy", w.sequence_accuracy()},
                              {"tokens_per_s", w.tokens_per_s()},
                              {"lr", learning_rate(train_, step)},
                              {"wall_s", run_seconds()}});
    bar.window(step, w);
  }

  void log_evaluation(int64_t step, const std::vector<EvalResult>& results, Progress& bar) {
    std::string text = fmt::format("{}  eval at step {}:", label_, step);
    for (const EvalResult& r : results) {
      append_metrics(dir_, json{{"step", step},
                                {"kind", "eval"},
                                {"length", r.length},
                                {"loss", r.loss},
                                {"accuracy", r.accuracy},
                                {"sequence_accuracy", r.sequence_accuracy},
                                {"wall_s", run_seconds()}});
      text += fmt::format("  L{} {:.3f}", r.length, r.accuracy);
    }
    bar.line(text);
  }

  RunSummary make_summary(bool stopped_early, std::optional<int64_t> diverged) const {
    RunSummary s;
    s.id = run_.id;
    s.suite = run_.suite;
    s.model = run_.model_name;
    s.task = run_.task.name;
    s.seed = run_.seed;
    s.status = diverged ? "diverged" : "finished";
    s.steps = diverged ? *diverged : progress_.step;
    s.diverged_at_step = diverged;
    s.stopped_early = stopped_early;
    s.tokens_per_s =
        progress_.train_s > 0 ? static_cast<double>(progress_.tokens) / progress_.train_s : 0;
    const PeakMemory peak = peak_memory(compute_);
    s.peak_memory_bytes = peak.allocated;
    s.peak_reserved_bytes = peak.reserved;
    s.train_min_length = run_.task.train_min_length;
    s.train_max_length = run_.task.train_max_length;
    return s;
  }

  std::string ending(const RunSummary& s) const {
    if (s.status == "diverged")
      return fmt::format("{}  diverged at step {} (loss not finite) after {}", label_,
                         *s.diverged_at_step, format_duration(s.wall_s));
    return fmt::format("{}  finished at step {}{} in {}, {:.0f} tok/s", label_, s.steps,
                       s.stopped_early ? " (target accuracy reached)" : "",
                       format_duration(s.wall_s), s.tokens_per_s);
  }

  const RunConfig& run_;
  const TrainSpec& train_;
  fs::path dir_;
  const TrainOptions& options_;
  std::string label_;
  Compute compute_;
  std::unique_ptr<tasks::Task> task_;
  tasks::LengthSplit split_;
  models::LanguageModel model_{nullptr};
  std::unique_ptr<torch::optim::AdamW> optimizer_;
  std::unique_ptr<TrainStep> step_;
  TrainProgress progress_;
  std::vector<PendingStep> pending_;
  Clock::time_point session_start_, mark_;
};

}  // namespace

std::optional<RunSummary> train_run(const RunConfig& run, const fs::path& run_dir,
                                    const TrainOptions& options) {
  return Session(run, run_dir, options).run();
}

}  // namespace m2b
