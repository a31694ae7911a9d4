#pragma once
// Helpers for the task tests: build an example from token text, read an error's message, hash
// an example. (Matchers differ between Catch2 v2 and v3, so messages are compared as strings.)
#include <sstream>
#include <string>
#include <vector>

#include "tasks/task.h"

namespace m2b::tasks::testing {

inline std::vector<std::string> words_of(const std::string& text) {
  std::istringstream in(text);
  std::vector<std::string> out;
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

inline Token id_of(const Task& task, const std::string& word) {
  const auto& v = task.vocabulary();
  for (size_t i = 0; i < v.size(); ++i)
    if (v[i] == word) return static_cast<Token>(i);
  throw std::invalid_argument("test: no token '" + word + "' in " + task.name());
}

// `answers` has one word per input: '.' for an unscored position (target '-'), otherwise the
// scored target's text.
inline Example example_from_text(const Task& task, const std::string& inputs,
                                 const std::string& answers) {
  const auto in = words_of(inputs), out = words_of(answers);
  if (in.size() != out.size())
    throw std::invalid_argument("test: inputs and answers differ in size");
  Example ex;
  for (size_t i = 0; i < in.size(); ++i) {
    ex.inputs.push_back(id_of(task, in[i]));
    ex.targets.push_back(id_of(task, out[i] == "." ? "-" : out[i]));
    ex.scored.push_back(out[i] != ".");
  }
  return ex;
}

// The what() of the exception of type E that f throws; "no exception" or "other exception:
// <what>" otherwise, so a failing CHECK shows what happened.
template <typename E, typename F>
std::string message_of(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("other exception: ") + e.what();
  }
  return "no exception";
}

inline bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// FNV-1a over the inputs, targets and scored flags.
inline uint64_t fnv1a(const Example& ex) {
  uint64_t h = 0xCBF29CE484222325ULL;
  auto eat = [&](uint64_t x, int bytes) {
    for (int b = 0; b < bytes; ++b) {
      h ^= (x >> (8 * b)) & 0xFF;
      h *= 0x100000001B3ULL;
    }
  };
  for (Token t : ex.inputs) eat(static_cast<uint32_t>(t), 4);
  for (Token t : ex.targets) eat(static_cast<uint32_t>(t), 4);
  for (uint8_t s : ex.scored) eat(s, 1);
  return h;
}

}  // namespace m2b::tasks::testing
