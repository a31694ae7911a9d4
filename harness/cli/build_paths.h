#pragma once
// Paths the build was configured with (harness/cli/build_paths.cpp.in, filled in by CMake): a
// generated source rather than compile definitions, so that the files that use them stay in
// their target's unity batches.
namespace m2b {

// The project's source folder, whose plots/ holds the plot scripts.
extern const char* const kSourceDir;
// The Python with matplotlib that the build found (M2BENCH_PYTHON at configure time).
extern const char* const kConfiguredPython;

}  // namespace m2b
