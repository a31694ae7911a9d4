#include "tasks/render.h"

#include <algorithm>

namespace m2b::tasks {

std::vector<std::string> token_texts(const Task& task, const std::vector<Token>& tokens) {
  const auto& words = task.vocabulary();
  std::vector<std::string> out;
  out.reserve(tokens.size());
  for (Token t : tokens) out.push_back(words.at(t));
  return out;
}

std::string render_text(const Task& task, const Example& ex) {
  const auto& words = task.vocabulary();
  std::string input = "input : ", target = "target: ";
  for (size_t i = 0; i < ex.inputs.size(); ++i) {
    const std::string& in = words.at(ex.inputs[i]);
    const std::string out = ex.scored[i] ? "[" + words.at(ex.targets[i]) + "]" : ".";
    const size_t width = std::max(in.size(), out.size()) + 1;
    input += in + std::string(width - in.size(), ' ');
    target += out + std::string(width - out.size(), ' ');
  }
  while (!input.empty() && input.back() == ' ') input.pop_back();
  while (!target.empty() && target.back() == ' ') target.pop_back();
  return input + "\n" + target + "\n";
}

}  // namespace m2b::tasks
