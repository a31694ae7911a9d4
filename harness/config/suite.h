#pragma once
// Experiment suites: one YAML file expands into the fully resolved runs it asks for.
//
//   suite: s3_length_generalisation    # name of results/<suite>/ and plots/<suite>/
//   description: free text             # optional
//   include: models.yaml               # or a list; relative to this file; adds its `models:`
//   models: {NAME: {d_model: .., n_layers: .., layers: [...]}, ...}   # optional, local models
//   defaults: {model: m2rnn, task: {...}, train: {...}, seed: 0}      # run keys (run_schema.h)
//   grid:                              # every combination of the listed values, first key
//     model: [m2rnn, mamba2]           # outermost; each key takes a non-empty list
//     task.name: [s3, s5]
//     seed: [0, 1, 2]
//   overrides:                         # applied in order to every run they match
//     - when: {model: attention}       # keys set by defaults or grid, tested against the
//       set: {train.lr: 3e-4}          # values those give; compared as numbers where both
//                                      # are numbers, else as text
//
// The table row of a run (RunConfig::model_name) is the model's name, followed by
// " KEY=VALUE" for every other grid key with more than one value, except seed, task.name and
// the training lengths (seeds are averaged; tasks and training ranges get their own tables).
// Runs that resolve to the same config (same id) are listed once.
// An included file may hold only `models:` and `include:`.
#include <filesystem>
#include <string>
#include <vector>

#include "harness/config/run_config.h"
#include "harness/config/run_schema.h"

namespace m2b {

struct Suite {
  std::string name;
  std::filesystem::path path;
  std::vector<RunConfig> runs;  // in grid order
};

// Parses, validates and expands the suite; throws ConfigError (one line, file:line:column) at
// the first problem, before anything is trained or written.
Suite load_suite(const std::filesystem::path& path);

}  // namespace m2b
