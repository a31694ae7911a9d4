#pragma once
// Human-readable text of an example, for `m2bench data` and for debugging.
#include <string>
#include <vector>

#include "tasks/task.h"

namespace m2b::tasks {

std::vector<std::string> token_texts(const Task& task, const std::vector<Token>& tokens);

// Two aligned lines, each token in its own column:
//   input : move o1 b2 where o1 ...
//   target: .    .  .  .     [b2] ...
// A scored target is shown in brackets; an unscored one as '.'.
std::string render_text(const Task& task, const Example& example);

}  // namespace m2b::tasks
