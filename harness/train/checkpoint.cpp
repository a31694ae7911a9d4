#include "harness/train/checkpoint.h"

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <map>
#include <optional>
#include <sstream>
#include <vector>

#include "common/fnv1a.h"
#include "harness/results/results.h"

#ifdef M2BENCH_HAVE_CUDA
#include <ATen/cuda/CUDAGeneratorImpl.h>
#endif

namespace m2b {

namespace fs = std::filesystem;

fs::path checkpoint_path(const fs::path& run_dir) { return run_dir / run_files::kCheckpoint; }

// After the archive: this, then the FNV-1a hash of the archive's bytes (8 bytes, little-endian).
constexpr char kChecksumMagic[] = "m2bench-checkpoint-fnv1a64";

// The counters as named scalars, so the archive reads back by name whatever their order. A
// counter added after checkpoints were written (`later`) keeps its default where one lacks it.
template <typename Visit>
static void visit_counters(TrainProgress& p, Visit&& visit) {
  visit("step", p.step);
  visit("tokens", p.tokens);
  visit("train_s", p.train_s);
  visit("elapsed_s", p.elapsed_s);
  visit("window_steps", p.window.steps);
  visit("window_tokens", p.window.tokens);
  visit("window_scored", p.window.scored);
  visit("window_correct", p.window.correct);
  visit("window_sequences", p.window.sequences);
  visit("window_sequences_correct", p.window.sequences_correct);
  visit("window_loss_sum", p.window.loss_sum);
  visit("window_seconds", p.window.seconds);
  visit("started_at", p.started_at);
  visit("on_target_since", p.on_target_since, /*later=*/true);
}

void save_checkpoint(const fs::path& run_dir, const std::string& run_id,
                     const models::LanguageModel& model, const torch::optim::Optimizer& optimizer,
                     const TrainProgress& progress) {
  torch::serialize::OutputArchive archive;
  torch::serialize::OutputArchive model_archive, optimizer_archive;
  model->save(model_archive);
  optimizer.save(optimizer_archive);
  archive.write("model", model_archive);
  archive.write("optimizer", optimizer_archive);
  archive.write("rng_cpu", at::detail::getDefaultCPUGenerator().get_state());
#ifdef M2BENCH_HAVE_CUDA
  if (torch::cuda::is_available())
    archive.write("rng_cuda", at::cuda::detail::getDefaultCUDAGenerator().get_state());
#endif
  archive.write("run_id", c10::IValue(run_id));
  TrainProgress copy = progress;
  visit_counters(copy, [&](const char* key, auto& value, bool = false) {
    archive.write(key, c10::IValue(value));
  });
  std::ostringstream bytes;
  archive.save_to(bytes);
  std::string content = bytes.str();
  const uint64_t hash = fnv1a64(content);
  content += kChecksumMagic;
  for (int i = 0; i < 8; ++i) content += static_cast<char>((hash >> (8 * i)) & 0xff);
  write_atomic(checkpoint_path(run_dir), content);
}

// The archive's bytes, their checksum verified; a checkpoint from before checksums were written
// is taken whole.
static std::string archive_bytes(const fs::path& path) {
  std::string content = read_file(path);
  constexpr size_t kMagic = sizeof kChecksumMagic - 1, kTrailer = kMagic + 8;
  if (content.size() < kTrailer ||
      content.compare(content.size() - kTrailer, kMagic, kChecksumMagic) != 0)
    return content;
  uint64_t stored = 0;
  for (int i = 0; i < 8; ++i)
    stored |= static_cast<uint64_t>(static_cast<unsigned char>(content[content.size() - 8 + i]))
              << (8 * i);
  content.resize(content.size() - kTrailer);
  if (fnv1a64(content) != stored)
    throw std::runtime_error(fmt::format(
        "{}: its bytes do not match the checksum written with them (damaged on disk?); delete it "
        "to restart this run from the beginning",
        path.string()));
  return content;
}

// A counter's stored value; nothing where a counter added later is missing.
static std::optional<c10::IValue> read_counter(torch::serialize::InputArchive& archive,
                                               const char* key, bool later) {
  c10::IValue value;
  if (!later) archive.read(key, value);
  else if (!archive.try_read(key, value)) return std::nullopt;
  return value;
}
static void set_counter(const c10::IValue& value, int64_t& v) { v = value.toInt(); }
static void set_counter(const c10::IValue& value, double& v) { v = value.toDouble(); }
static void set_counter(const c10::IValue& value, std::string& v) { v = value.toStringRef(); }

// The shape of every parameter and buffer, by name.
static std::map<std::string, std::vector<int64_t>> shapes(const models::LanguageModel& model) {
  std::map<std::string, std::vector<int64_t>> out;
  for (const auto& item : model->named_parameters()) out[item.key()] = item.value().sizes().vec();
  for (const auto& item : model->named_buffers()) out[item.key()] = item.value().sizes().vec();
  return out;
}

[[noreturn]] static void fail_foreign(const fs::path& path, const std::string& what,
                                      const std::string& run_id) {
  throw std::runtime_error(fmt::format(
      "{}: {}, so it is another run's checkpoint (copied or moved here?); move it back, or delete "
      "it to train run {} from the beginning",
      path.string(), what, run_id));
}

std::optional<TrainProgress> load_checkpoint(const fs::path& run_dir, const std::string& run_id,
                                             models::LanguageModel& model,
                                             torch::optim::Optimizer& optimizer) {
  const fs::path path = checkpoint_path(run_dir);
  if (!fs::exists(path)) return std::nullopt;
  try {
    const std::string bytes = archive_bytes(path);
    torch::serialize::InputArchive archive;
    archive.load_from(bytes.data(), bytes.size());
    c10::IValue stored_id;
    if (archive.try_read("run_id", stored_id) && stored_id.toStringRef() != run_id)
      fail_foreign(path, fmt::format("it names run {}", stored_id.toStringRef()), run_id);
    torch::serialize::InputArchive model_archive, optimizer_archive;
    archive.read("model", model_archive);
    archive.read("optimizer", optimizer_archive);
    // Loading replaces each tensor whole, shape included, without a word.
    const auto expected = shapes(model);
    model->load(model_archive);
    for (const auto& [name, shape] : shapes(model))
      if (shape != expected.at(name))
        fail_foreign(path,
                     fmt::format("its {} is {}, where run {}'s model has {}", name,
                                 fmt::join(shape, "x"), run_id, fmt::join(expected.at(name), "x")),
                     run_id);
    optimizer.load(optimizer_archive);
    torch::Tensor state;
    archive.read("rng_cpu", state);
    at::Generator cpu_generator = at::detail::getDefaultCPUGenerator();  // a handle, shared
    cpu_generator.set_state(state);
#ifdef M2BENCH_HAVE_CUDA
    if (torch::cuda::is_available() && archive.try_read("rng_cuda", state)) {
      at::Generator cuda_generator = at::cuda::detail::getDefaultCUDAGenerator();
      cuda_generator.set_state(state);
    }
#endif
    TrainProgress progress;
    visit_counters(progress, [&](const char* key, auto& value, bool later = false) {
      if (const auto stored = read_counter(archive, key, later)) set_counter(*stored, value);
    });
    return progress;
  } catch (const c10::Error& e) {
    throw std::runtime_error(
        fmt::format("{}: not a readable checkpoint ({}); delete it to "
                    "restart this run from the beginning",
                    path.string(), e.what_without_backtrace()));
  }
}

}  // namespace m2b
