#include "harness/train/fresh_replacement.h"

#include <fmt/format.h>

#include <fcntl.h>
#include <stdio.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "harness/results/results.h"
#include "harness/train/run_claim.h"

namespace m2b {

namespace fs = std::filesystem;

fs::path staging_dir(const fs::path& run_dir) {
  return run_dir.parent_path() / (".fresh-" + run_dir.filename().string());
}

fs::path aside_dir(const fs::path& run_dir) {
  return run_dir.parent_path() / (".old-" + run_dir.filename().string());
}

void replace_run_dir(const fs::path& dir, const fs::path& staging) {
  if (::renameat2(AT_FDCWD, staging.c_str(), AT_FDCWD, dir.c_str(), RENAME_EXCHANGE) != 0) {
    if (errno != EINVAL && errno != ENOSYS)
      throw std::runtime_error(fmt::format("cannot put {} in place of {}: {}", staging.string(),
                                           dir.string(), std::strerror(errno)));
    const fs::path aside = aside_dir(dir);
    remove_tree(aside);
    fs::rename(dir, aside);
    fs::rename(staging, dir);
    remove_tree(aside);
    return;
  }
  remove_tree(staging);  // now the old result: the older of the two summaries
}

// Whether `dir` holds a run that ended (finished or diverged) with a summary to trust.
static bool ended(const fs::path& dir) {
  try {
    return read_summary(dir).has_value();
  } catch (const BadSummary&) {
    return false;
  }
}

// Whether staging holds a result that has not taken the run folder's place yet: one that ended
// after the folder's own (after an exchange the old result waits in staging to be deleted, and
// it is the older).
static bool newer_in_staging(const fs::path& dir) {
  const fs::path staging = staging_dir(dir);
  if (!ended(staging)) return false;
  const fs::path current = dir / run_files::kSummary;
  return !fs::exists(current) ||
         fs::last_write_time(staging / run_files::kSummary) > fs::last_write_time(current);
}

bool replacement_cut_short(const fs::path& dir) {
  return fs::exists(dir) ? newer_in_staging(dir) : fs::exists(aside_dir(dir));
}

static const char* kNewInPlace =
    "put in place the result of a --fresh run stopped before it replaced the old one";

std::optional<std::string> finish_replacement(const fs::path& dir) {
  const fs::path staging = staging_dir(dir), aside = aside_dir(dir);
  std::string done;
  if (!fs::exists(dir) && fs::exists(aside)) {
    // Killed between the two renames: the old result aside, the new one in staging.
    std::optional<RunClaim> claim = RunClaim::try_claim(aside, /*create=*/false);
    if (!claim) return fs::exists(aside) ? std::nullopt : std::optional<std::string>("");
    if (fs::exists(dir)) return "";  // mended meanwhile
    if (!ended(staging)) {
      fs::rename(aside, dir);
      claim->moved_to(dir);
      return "put back the result that a stopped --fresh run had moved aside";
    }
    fs::rename(staging, dir);
    done = kNewInPlace;
  } else if (fs::exists(dir) && newer_in_staging(dir)) {
    // Killed after the new run ended, before the swap.
    std::optional<RunClaim> claim = RunClaim::try_claim(dir, /*create=*/false);
    if (claim && newer_in_staging(dir)) {
      replace_run_dir(dir, staging);
      done = kNewInPlace;
    }
  }
  // Killed while deleting the old result after the new one took its place: aside after two
  // renames, in staging after an exchange. Each holds its swapper's claim while it lives.
  // The summary of the run is read only where a leftover is there: most runs have none.
  if ((fs::exists(aside) || fs::exists(staging)) && ended(dir)) {
    if (std::optional<RunClaim> claim = RunClaim::try_claim(aside, /*create=*/false))
      remove_tree(aside);
    if (ended(staging) && !newer_in_staging(dir))
      if (std::optional<RunClaim> claim = RunClaim::try_claim(staging, /*create=*/false))
        remove_tree(staging);
  }
  return done;
}

}  // namespace m2b
