#include "harness/results/results.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <random>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <vector>

#include <fmt/format.h>

#include "common/options.h"
#include "harness/config/run_schema.h"

namespace m2b {

namespace fs = std::filesystem;
using nlohmann::json;

void to_json(json& j, const EvalResult& r) {
  j = json{{"length", r.length},
           {"accuracy", r.accuracy},
           {"sequence_accuracy", r.sequence_accuracy},
           {"loss", r.loss}};
  if (!r.prefix_accuracy.empty()) j["prefix_accuracy"] = r.prefix_accuracy;
}

// Summaries are read by later versions than wrote them, and a field a later version adds is
// absent from every committed summary.json. So every field is optional, keeping the default of
// a fresh object when absent or null (what NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT does;
// nlohmann 3.11 cannot apply it to std::optional), except what a summary is judged and tabled
// by: its identity, status and accuracies. Without those it is not a summary.
template <typename T>
void read_optional_field(const json& j, const char* key, T& field) {
  if (const auto it = j.find(key); it != j.end() && !it->is_null()) field = it->get<T>();
}

void from_json(const json& j, EvalResult& r) {
  j.at("length").get_to(r.length);
  j.at("accuracy").get_to(r.accuracy);
  j.at("sequence_accuracy").get_to(r.sequence_accuracy);
  read_optional_field(j, "loss", r.loss);
  read_optional_field(j, "prefix_accuracy", r.prefix_accuracy);
}

void to_json(json& j, const RunSummary& s) {
  j = json{{"id", s.id},
           {"suite", s.suite},
           {"model", s.model},
           {"task", s.task},
           {"seed", s.seed},
           {"status", s.status},
           {"steps", s.steps},
           {"diverged_at_step", s.diverged_at_step ? json(*s.diverged_at_step) : json(nullptr)},
           {"stopped_early", s.stopped_early},
           {"wall_s", s.wall_s},
           {"tokens_per_s", s.tokens_per_s},
           {"peak_memory_bytes", s.peak_memory_bytes},
           {"peak_reserved_bytes", s.peak_reserved_bytes},
           {"train_min_length", s.train_min_length},
           {"train_max_length", s.train_max_length},
           {"eval", s.eval},
           {"provenance", s.provenance}};
}

void from_json(const json& j, RunSummary& s) {
  j.at("id").get_to(s.id);
  j.at("suite").get_to(s.suite);
  j.at("model").get_to(s.model);
  j.at("task").get_to(s.task);
  j.at("seed").get_to(s.seed);
  j.at("status").get_to(s.status);
  j.at("eval").get_to(s.eval);
  read_optional_field(j, "steps", s.steps);
  if (const auto it = j.find("diverged_at_step"); it != j.end() && !it->is_null())
    s.diverged_at_step = it->get<int64_t>();
  read_optional_field(j, "stopped_early", s.stopped_early);
  read_optional_field(j, "wall_s", s.wall_s);
  read_optional_field(j, "tokens_per_s", s.tokens_per_s);
  read_optional_field(j, "peak_memory_bytes", s.peak_memory_bytes);
  read_optional_field(j, "peak_reserved_bytes", s.peak_reserved_bytes);
  read_optional_field(j, "train_min_length", s.train_min_length);
  read_optional_field(j, "train_max_length", s.train_max_length);
  read_optional_field(j, "provenance", s.provenance);
}

fs::path suite_dir(const fs::path& results_root, const std::string& suite) {
  return results_root / suite;
}

fs::path run_dir(const fs::path& results_root, const RunConfig& run) {
  return suite_dir(results_root, run.suite) / run.id;
}

[[noreturn]] void fail_errno(const std::string& what, const fs::path& path) {
  throw std::runtime_error(fmt::format("{} {}: {}", what, path.string(), std::strerror(errno)));
}

static void write_all(int fd, const std::string& content, const fs::path& path) {
  size_t done = 0;
  while (done < content.size()) {
    ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail_errno("cannot write", path);
    done += static_cast<size_t>(n);
  }
}

// The rename is durable only once the folder's entry is on disk too.
static void fsync_dir(const fs::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) fail_errno("cannot open folder", dir);
  int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) fail_errno("cannot sync folder", dir);
}

// write_atomic's temp file for <name>: .<name>.tmp.<pid>.<8 hex digits>
static const std::regex kTemporary(R"(\..+\.tmp\.[0-9]+\.[0-9a-f]{8})");

void remove_temporaries(const fs::path& run_dir) {
  if (!fs::is_directory(run_dir)) return;
  for (const fs::directory_entry& entry : fs::directory_iterator(run_dir))
    if (std::regex_match(entry.path().filename().string(), kTemporary))
      ::unlink(entry.path().c_str());
}

void write_atomic(const fs::path& path, const std::string& content) {
  fs::path dir = path.parent_path().empty() ? fs::path(".") : path.parent_path();
  fs::create_directories(dir);
  // Unique per process and call, so two writers never share a temp file.
  std::random_device entropy;
  fs::path tmp =
      dir / fmt::format(".{}.tmp.{}.{:08x}", path.filename().string(), ::getpid(), entropy());
  int fd = open_for_writing(tmp, O_WRONLY | O_EXCL);
  try {
    write_all(fd, content, tmp);
    if (::fsync(fd) != 0) fail_errno("cannot sync", tmp);
  } catch (...) {
    ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int saved = errno;
    ::unlink(tmp.c_str());
    errno = saved;
    fail_errno("cannot replace", path);
  }
  fsync_dir(dir);
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail_errno("cannot read", path);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

void refuse_other_runs_folder(const fs::path& dir, const RunConfig& run) {
  const fs::path path = dir / run_files::kConfig;
  // The run id is the hash of the config, and names the folder.
  if (fs::exists(path))
    if (const std::string held = run_id(read_file(path)); held != run.id)
      throw std::runtime_error(fmt::format(
          "{}: it is run {}'s config, not run {}'s: the folder was moved or copied from run {}'s; "
          "move it back, or delete it to train run {} from the beginning",
          path.string(), held, run.id, held, run.id));
}

void write_config(const fs::path& dir, const RunConfig& run) {
  refuse_other_runs_folder(dir, run);
  write_atomic(dir / run_files::kConfig, run.canonical_yaml);
}

// What makes a summary untrustworthy, or "" when nothing does.
static std::string summary_problem(const RunSummary& s, const fs::path& dir) {
  if (s.status != "finished" && s.status != "diverged")
    return fmt::format("status \"{}\" is not one of finished, diverged", excerpt(s.status));
  for (const EvalResult& e : s.eval) {
    for (const auto& [name, value] : {std::pair<const char*, double>{"accuracy", e.accuracy},
                                      {"sequence_accuracy", e.sequence_accuracy}})
      if (!(value >= 0 && value <= 1))  // also NaN
        return fmt::format("{} at length {} is {}, outside [0, 1]", name, e.length, value);
    for (size_t t = 0; t < e.prefix_accuracy.size(); ++t)
      if (!(e.prefix_accuracy[t] >= 0 && e.prefix_accuracy[t] <= 1))
        return fmt::format("prefix_accuracy at length {}, t = {} is {}, outside [0, 1]", e.length,
                           t + 1, e.prefix_accuracy[t]);
  }
  // The run id is the hash of the config: a summary copied in from another run names another.
  const fs::path config = dir / run_files::kConfig;
  if (fs::exists(config) && run_id(read_file(config)) != s.id)
    return fmt::format("it is the summary of run {}, but config.yaml beside it is run {}'s",
                       excerpt(s.id), run_id(read_file(config)));
  return "";
}

[[noreturn]] static void fail_summary(const fs::path& path, const std::string& problem) {
  throw BadSummary(fmt::format("{}: {}; delete it to retrain the run", path.string(), problem));
}

std::optional<RunSummary> read_summary(const fs::path& dir) {
  fs::path path = dir / run_files::kSummary;
  if (!fs::exists(path)) return std::nullopt;
  RunSummary summary;
  try {
    summary = json::parse(read_file(path)).get<RunSummary>();
  } catch (const json::exception& e) {
    // Past nlohmann's "[json.exception.<kind>.<id>] ", which means nothing to the reader.
    const std::string what = e.what();
    const size_t tag_end =
        what.rfind("[json.exception.", 0) == 0 ? what.find("] ") : std::string::npos;
    const std::string message = tag_end == std::string::npos ? what : what.substr(tag_end + 2);
    fail_summary(path, fmt::format("not a run summary ({})", excerpt(message)));
  }
  if (std::string problem = summary_problem(summary, dir); !problem.empty())
    fail_summary(path, problem);
  return summary;
}

void write_summary(const fs::path& dir, const RunSummary& summary) {
  write_atomic(dir / run_files::kSummary, json(summary).dump(2) + "\n");
}

// Whole lines only: a last line without its newline is a torn write. A line that does not parse
// (a crash can leave zeros where data was not yet on disk) is skipped, keeping those after it.
static std::vector<json> parse_metrics(const std::string& text) {
  std::vector<json> out;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) break;
    json line = json::parse(text.begin() + start, text.begin() + end, nullptr, false);
    if (!line.is_discarded()) out.push_back(std::move(line));
    start = end + 1;
  }
  return out;
}

// Where the file's whole lines end: after its last newline (0 when it has none).
static off_t whole_lines_end(int fd, off_t size, const fs::path& path) {
  char chunk[4096];
  for (off_t end = size; end > 0;) {
    off_t start = end > off_t(sizeof chunk) ? end - off_t(sizeof chunk) : 0;
    ssize_t n = ::pread(fd, chunk, static_cast<size_t>(end - start), start);
    if (n != end - start) fail_errno("cannot read", path);
    for (ssize_t i = n - 1; i >= 0; --i)
      if (chunk[i] == '\n') return start + i + 1;
    end = start;
  }
  return 0;
}

void append_metrics(const fs::path& dir, const json& line) {
  if (!line.is_object())
    throw std::invalid_argument("append_metrics: a metrics line must be a JSON object");
  fs::create_directories(dir);
  fs::path path = dir / run_files::kMetrics;
  int fd = open_for_writing(path, O_RDWR);
  try {
    off_t size = ::lseek(fd, 0, SEEK_END);
    if (size < 0) fail_errno("cannot seek", path);
    off_t whole = whole_lines_end(fd, size, path);
    if (whole != size && ::ftruncate(fd, whole) != 0)
      fail_errno("cannot cut the torn tail of", path);
    if (::lseek(fd, whole, SEEK_SET) < 0) fail_errno("cannot seek", path);
    write_all(fd, line.dump() + "\n", path);
    if (::fsync(fd) != 0) fail_errno("cannot sync", path);
  } catch (...) {
    ::close(fd);
    throw;
  }
  ::close(fd);
}

std::vector<json> read_metrics(const fs::path& dir) {
  fs::path path = dir / run_files::kMetrics;
  if (!fs::exists(path)) return {};
  return parse_metrics(read_file(path));
}

// What run refuses a linked run folder or run file with: every command says the same of it.
static std::string link_problem(const fs::path& path) {
  return fmt::format(
      "{} is a symbolic link; m2bench writes its results only into files and folders of its own, "
      "so remove the link",
      path.string());
}

StoredRun read_stored_run(const fs::path& dir) {
  StoredRun out;
  std::vector<fs::path> paths = {dir};
  for (const char* name : run_files::kAll) paths.push_back(dir / name);
  for (const fs::path& path : paths)
    if (fs::is_symlink(path)) {
      out.state = RunState::invalid;
      out.problem = link_problem(path);
      return out;
    }
  const fs::path path = dir / run_files::kSummary;
  try {
    out.summary = read_summary(dir);
    // The trainer writes config.yaml first: a summary without one was put there by hand.
    if (out.summary && !fs::exists(dir / run_files::kConfig))
      fail_summary(path, "there is no config.yaml beside it to say which run it is");
    if (out.summary && out.summary->id != dir.filename().string())
      fail_summary(path, fmt::format("it is the summary of run {}, but its folder is named {} (a "
                                     "run's folder is named by its id)",
                                     out.summary->id, dir.filename().string()));
  } catch (const BadSummary& e) {
    out.summary.reset();
    out.state = RunState::invalid;
    out.problem = e.what();
    return out;
  }
  if (out.summary)
    out.state = out.summary->status == "diverged" ? RunState::diverged : RunState::finished;
  else out.state = fs::exists(dir / run_files::kConfig) ? RunState::started : RunState::missing;
  return out;
}

RunState run_state(const fs::path& dir) { return read_stored_run(dir).state; }

std::string to_string(RunState state) {
  switch (state) {
    case RunState::missing: return "missing";
    case RunState::started: return "started";
    case RunState::finished: return "finished";
    case RunState::diverged: return "diverged";
    case RunState::invalid: return "invalid";
  }
  return "?";
}

[[noreturn]] static void fail_link(const fs::path& path) {
  throw std::runtime_error(link_problem(path));
}

int open_for_writing(const fs::path& path, int flags) {
  int fd = ::open(path.c_str(), flags | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd >= 0) return fd;
  if (errno == ELOOP) fail_link(path);
  fail_errno(flags & O_EXCL ? "cannot create" : "cannot open", path);
}

void refuse_links(const fs::path& run_dir) {
  if (fs::is_symlink(run_dir)) fail_link(run_dir);
  for (const char* name : run_files::kAll)
    if (fs::is_symlink(run_dir / name)) fail_link(run_dir / name);
}

void remove_tree(const std::filesystem::path& path) {
  if (std::filesystem::is_directory(std::filesystem::symlink_status(path)))
    for (const auto& entry : std::filesystem::directory_iterator(path)) remove_tree(entry.path());
  std::filesystem::remove(path);
}

}  // namespace m2b
