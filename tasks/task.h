#pragma once
// The task interface: a vocabulary, a deterministic generator and an independent checker.
// Pure C++ (no LibTorch): the data of a run must not depend on the model library.
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/options.h"
#include "tasks/rng.h"

namespace m2b::tasks {

using Token = int32_t;

// One sequence. inputs, targets and scored have the same size. targets[i] is the token the model
// must predict at position i (from inputs[0..i]); it counts only where scored[i] is 1.
struct Example {
  std::vector<Token> inputs;
  std::vector<Token> targets;
  std::vector<uint8_t> scored;
};

// Bad task parameters or an unknown task: the message names what was wrong and what is valid.
class TaskError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

class Task {
 public:
  virtual ~Task() = default;
  virtual const std::string& name() const = 0;
  // Token id -> printable text; inputs and targets share it, so the model has one output head.
  virtual const std::vector<std::string>& vocabulary() const = 0;
  // `length` is the number of state updates (group elements, operations, statements), so that
  // "train on L, test on 4L" means the same for every task. Every example of one length has the
  // same number of tokens, token_count(length), so batches need no padding.
  virtual int64_t token_count(int64_t length) const = 0;
  virtual Example sample(int64_t length, Rng& rng) const = 0;
  // Recomputes the answers by an independent route and throws TaskError naming the first
  // position that disagrees. Used by tests, never on the training path.
  virtual void check(const Example& example) const = 0;
};

}  // namespace m2b::tasks
