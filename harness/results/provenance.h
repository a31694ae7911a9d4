#pragma once
// What was built: the provenance every results file and `m2bench version` carries.
#include <string>

namespace m2b {
extern const char* const kGitSha;  // full SHA of HEAD at build time, or "unknown"
extern const bool kGitDirty;       // tracked files differed from HEAD at build time
extern const char* const kBuildType;

std::string torch_version();
bool cuda_compiled();       // the CUDA kernels and bindings are in this build
bool cuda_available();      // and a device is present now
std::string device_name();  // "cpu" or the GPU's name
}  // namespace m2b
