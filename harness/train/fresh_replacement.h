#pragma once
// --fresh's replacement of a run's folder. The run trains in .fresh-<id> beside its folder; once
// its summary is written the new folder takes the old one's place: in one step where the file
// system can exchange two names (renameat2), else by two renames with the old folder moved
// aside to .old-<id> until the new one is in place (NFS, the cluster's results root). A kill
// between any two of these steps leaves each result whole but maybe out of its place, which the
// next `m2bench run` mends (finish_replacement) and `m2bench status` reports.
#include <filesystem>
#include <optional>
#include <string>

namespace m2b {

std::filesystem::path staging_dir(const std::filesystem::path& run_dir);  // .fresh-<id>
std::filesystem::path aside_dir(const std::filesystem::path& run_dir);    // .old-<id>

// Puts `staging` in place of `run_dir`, the caller holding run_dir's claim.
void replace_run_dir(const std::filesystem::path& run_dir, const std::filesystem::path& staging);

// Whether a kill cut the run's replacement short: its folder moved aside and not back, or a
// result in staging newer than the folder's that never took its place.
bool replacement_cut_short(const std::filesystem::path& run_dir);

// Mends a replacement that a kill cut short, holding the claim of each folder it moves so that a
// live --fresh mid-swap is left alone. Returns what it did, for the run's line ("" when nothing
// needed it); nullopt when the run's folder is aside, held by a process still swapping it.
std::optional<std::string> finish_replacement(const std::filesystem::path& run_dir);

}  // namespace m2b
