#include "tasks/slotted.h"

#include <fmt/format.h>

namespace m2b::tasks {

Token Vocabulary::add(const std::string& word) {
  auto id = static_cast<Token>(words_.size());
  if (!ids_.emplace(word, id).second)
    throw std::logic_error(fmt::format("vocabulary: '{}' added twice", word));
  words_.push_back(word);
  return id;
}

Token Vocabulary::add_indexed(const std::string& prefix, int64_t count) {
  auto first = static_cast<Token>(words_.size());
  for (int64_t i = 0; i < count; ++i) add(fmt::format("{}{}", prefix, i));
  return first;
}

ExampleWriter::ExampleWriter(Token pad, int64_t size) : pad_(pad) {
  example_.inputs.reserve(size);
  example_.targets.reserve(size);
  example_.scored.reserve(size);
}

void ExampleWriter::add(Token input) {
  example_.inputs.push_back(input);
  example_.targets.push_back(pad_);
  example_.scored.push_back(0);
}

void ExampleWriter::add_scored(Token input, Token answer) {
  example_.inputs.push_back(input);
  example_.targets.push_back(answer);
  example_.scored.push_back(1);
}

void fail_at(const Task& task, int64_t pos, const std::string& what) {
  throw TaskError(fmt::format("{}: position {}: {}", task.name(), pos, what));
}

void require_length(const Task& task, int64_t length) {
  if (length < 1)
    throw TaskError(fmt::format("{}: length must be at least 1, got {}", task.name(), length));
}

void check_tokens(const Task& task, const Example& ex) {
  const size_t n = ex.inputs.size();
  if (ex.targets.size() != n || ex.scored.size() != n)
    throw TaskError(fmt::format("{}: inputs, targets and scored differ in size ({}, {}, {})",
                                task.name(), n, ex.targets.size(), ex.scored.size()));
  if (n == 0) throw TaskError(fmt::format("{}: empty example", task.name()));
  const auto vocab = static_cast<Token>(task.vocabulary().size());
  for (size_t i = 0; i < n; ++i) {
    if (ex.inputs[i] < 0 || ex.inputs[i] >= vocab)
      fail_at(task, i,
              fmt::format("input id {} outside the vocabulary [0, {})", ex.inputs[i], vocab));
    if (ex.targets[i] < 0 || ex.targets[i] >= vocab)
      fail_at(task, i,
              fmt::format("target id {} outside the vocabulary [0, {})", ex.targets[i], vocab));
    if (ex.scored[i] > 1) fail_at(task, i, fmt::format("scored is {}, not 0 or 1", ex.scored[i]));
  }
}

int64_t slotted_length(const Task& task, const Example& ex, int64_t prefix, int64_t slot) {
  const auto n = static_cast<int64_t>(ex.inputs.size());
  if (n < prefix + slot || (n - prefix) % slot != 0)
    throw TaskError(fmt::format("{}: {} tokens is not {} + {} per step for any length >= 1",
                                task.name(), n, prefix, slot));
  return (n - prefix) / slot;
}

void expect_target(const Task& task, const Example& ex, int64_t pos, bool scored,
                   const std::string& target) {
  const auto& words = task.vocabulary();
  if (static_cast<bool>(ex.scored[pos]) != scored)
    fail_at(task, pos, fmt::format("should be {}", scored ? "scored" : "unscored"));
  if (words[ex.targets[pos]] != target)
    fail_at(task, pos,
            fmt::format("target is '{}', expected '{}'", words[ex.targets[pos]], target));
}

bool query_after(int64_t step, int64_t length, double p, Rng& rng) {
  return rng.chance(p) || step + 1 == length;
}

int64_t parse_indexed(const std::string& text, const std::string& prefix) {
  if (text.size() <= prefix.size() || text.compare(0, prefix.size(), prefix) != 0) return -1;
  int64_t value = 0;
  for (size_t i = prefix.size(); i < text.size(); ++i) {
    if (text[i] < '0' || text[i] > '9') return -1;
    value = value * 10 + (text[i] - '0');
  }
  return value;
}

}  // namespace m2b::tasks
