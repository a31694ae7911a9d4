#pragma once
// Helpers shared by the tasks: a vocabulary built word by word, an example written token by
// token, and the checks every checker starts with. Tasks with operations and queries lay each
// example out as a fixed prefix then one fixed-size slot per step, so that every example of one
// length has the same token count.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "tasks/task.h"

namespace m2b::tasks {

class Vocabulary {
 public:
  Token add(const std::string& word);
  // Adds prefix0 .. prefix{count-1}; returns the id of prefix0 (the others follow in order).
  Token add_indexed(const std::string& prefix, int64_t count);
  const std::vector<std::string>& words() const { return words_; }

 private:
  std::vector<std::string> words_;
  std::map<std::string, Token> ids_;
};

// Unscored positions get `pad` as their target, so a target is always a valid token.
class ExampleWriter {
 public:
  ExampleWriter(Token pad, int64_t size);
  void add(Token input);
  void add_scored(Token input, Token answer);
  Example take() { return std::move(example_); }

 private:
  Token pad_;
  Example example_;
};

// Every checker's first step: the three vectors have one size, every token is in the
// vocabulary, scored holds only 0 and 1, and the length is at least 1.
void check_tokens(const Task& task, const Example& example);
// Each step of a slotted task ends in a query slot: the query token, then the token whose target
// is the answer (or filler where the step asks nothing).
constexpr int64_t kQuerySlot = 2;
// The length (number of steps) of an example of `size` tokens laid out as prefix + length * slot.
int64_t slotted_length(const Task& task, const Example& example, int64_t prefix, int64_t slot);
// Throws TaskError unless position `pos` has the given scored flag and target text.
void expect_target(const Task& task, const Example& example, int64_t pos, bool scored,
                   const std::string& target);
[[noreturn]] void fail_at(const Task& task, int64_t pos, const std::string& what);
void require_length(const Task& task, int64_t length);

// After each step a query comes with probability p; the last step always has one, so that
// every example scores at least one answer.
bool query_after(int64_t step, int64_t length, double p, Rng& rng);

// The index in a token text "<prefix><digits>" (e.g. "o12" -> 12), or -1 if it is not one.
int64_t parse_indexed(const std::string& text, const std::string& prefix);

}  // namespace m2b::tasks
