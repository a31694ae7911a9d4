#include "tasks/code_execution.h"

#include <map>

#include <fmt/format.h>

#include "tasks/registry.h"

namespace m2b::tasks {

namespace {
constexpr int64_t kStatementSlot = 5;
enum class Statement { Set, Copy, Add, Accumulate, Swap };
}  // namespace

const std::vector<OptionSpec>& CodeExecutionTask::option_specs() {
  static const std::vector<OptionSpec> specs = {
      {"variables", OptionType::Int, int64_t{3}, "number of variables (named a, b, c, ...)", 1, 26},
      {"modulus", OptionType::Int, int64_t{10},
       "values are taken mod this; constants are 0..modulus-1", 2, 100},
      {"query_prob", OptionType::Float, 0.5,
       "chance of a `print` after each statement (the last always has one; 0 = one at the end)", 0,
       1},
      {"swap", OptionType::Bool, true, "allow `swap x y` (needs variables >= 2)"},
  };
  return specs;
}

const std::string& CodeExecutionTask::name() const {
  static const std::string name = "code_execution";
  return name;
}

CodeExecutionTask::CodeExecutionTask(const Options& o)
    : variables_(o.get_int("variables")), modulus_(o.get_int("modulus")),
      query_prob_(o.get_float("query_prob")), swap_(o.get_bool("swap")) {
  if (swap_ && variables_ < 2)
    throw TaskError(
        "code_execution: swap=true needs variables >= 2 (got variables 1); set swap=false or add variables");
  pad_ = vocab_.add("-");
  assign_ = vocab_.add("=");
  accumulate_ = vocab_.add("+=");
  plus_ = vocab_.add("+");
  swap_op_ = vocab_.add("swap");
  print_ = vocab_.add("print");
  var0_ = static_cast<Token>(vocabulary().size());
  for (int64_t v = 0; v < variables_; ++v) vocab_.add(std::string(1, static_cast<char>('a' + v)));
  const0_ = vocab_.add_indexed("", modulus_);
}

int64_t CodeExecutionTask::token_count(int64_t length) const {
  return (kStatementSlot + kQuerySlot) * length;
}

Example CodeExecutionTask::sample(int64_t length, Rng& rng) const {
  require_length(*this, length);
  ExampleWriter out(pad_, token_count(length));
  std::vector<int64_t> value(variables_, 0);
  auto var = [&](int64_t v) { return static_cast<Token>(var0_ + v); };
  auto constant = [&](int64_t c) { return static_cast<Token>(const0_ + c); };
  const uint64_t kinds = swap_ ? 5 : 4;
  for (int64_t step = 0; step < length; ++step) {
    const auto kind = static_cast<Statement>(rng.below(kinds));
    const int64_t x = rng.below(variables_);
    if (kind == Statement::Swap) {
      const int64_t y = (x + 1 + rng.below(variables_ - 1)) % variables_;
      std::swap(value[x], value[y]);
      for (Token t : {swap_op_, var(x), var(y), pad_, pad_}) out.add(t);
    } else if (kind == Statement::Set) {
      const int64_t c = rng.below(modulus_);
      value[x] = c;
      for (Token t : {var(x), assign_, constant(c), pad_, pad_}) out.add(t);
    } else {
      const int64_t y = rng.below(variables_);
      if (kind == Statement::Copy) {
        value[x] = value[y];
        for (Token t : {var(x), assign_, var(y), pad_, pad_}) out.add(t);
      } else if (kind == Statement::Add) {
        const int64_t c = rng.below(modulus_);
        value[x] = (value[y] + c) % modulus_;
        for (Token t : {var(x), assign_, var(y), plus_, constant(c)}) out.add(t);
      } else {
        value[x] = (value[x] + value[y]) % modulus_;
        for (Token t : {var(x), accumulate_, var(y), pad_, pad_}) out.add(t);
      }
    }
    if (query_after(step, length, query_prob_, rng)) {
      const int64_t v = rng.below(variables_);
      out.add(print_);
      out.add_scored(var(v), constant(value[v]));
    } else {
      out.add(pad_);
      out.add(pad_);
    }
  }
  return out.take();
}

void CodeExecutionTask::check(const Example& ex) const {
  check_tokens(*this, ex);
  const int64_t length = slotted_length(*this, ex, 0, kStatementSlot + kQuerySlot);
  const auto& words = vocabulary();
  auto text = [&](int64_t pos) -> const std::string& { return words[ex.inputs[pos]]; };
  std::map<std::string, int64_t> value;
  for (int64_t v = 0; v < variables_; ++v) value[std::string(1, static_cast<char>('a' + v))] = 0;
  auto variable = [&](int64_t pos) -> int64_t& {
    auto it = value.find(text(pos));
    if (it == value.end())
      fail_at(*this, pos, fmt::format("expected a variable, got '{}'", text(pos)));
    return it->second;
  };
  auto constant = [&](int64_t pos) {
    const int64_t c = parse_indexed(text(pos), "");
    if (c < 0 || c >= modulus_)
      fail_at(*this, pos,
              fmt::format("expected a constant 0..{}, got '{}'", modulus_ - 1, text(pos)));
    return c;
  };
  auto expect_input = [&](int64_t pos, const std::string& want) {
    if (text(pos) != want)
      fail_at(*this, pos, fmt::format("expected '{}', got '{}'", want, text(pos)));
  };
  for (int64_t step = 0; step < length; ++step) {
    const int64_t at = step * (kStatementSlot + kQuerySlot);
    int64_t filler_from = at + 3;
    if (text(at) == "swap") {
      if (!swap_) fail_at(*this, at, "swap, but swap=false");
      if (text(at + 1) == text(at + 2)) fail_at(*this, at, "swap of a variable with itself");
      std::swap(variable(at + 1), variable(at + 2));
    } else if (text(at + 1) == "+=") {
      variable(at) = (variable(at) + variable(at + 2)) % modulus_;
    } else if (text(at + 1) != "=") {
      fail_at(*this, at + 1, fmt::format("expected '=' or '+=', got '{}'", text(at + 1)));
    } else if (value.count(text(at + 2)) == 0) {
      variable(at) = constant(at + 2);
    } else if (text(at + 3) == "+") {
      variable(at) = (variable(at + 2) + constant(at + 4)) % modulus_;
      filler_from = at + 5;
    } else {
      variable(at) = variable(at + 2);
    }
    for (int64_t pos = filler_from; pos < at + kStatementSlot; ++pos) expect_input(pos, "-");
    for (int64_t pos = at; pos <= at + kStatementSlot; ++pos)
      expect_target(*this, ex, pos, false, "-");
    const int64_t q = at + kStatementSlot;
    if (text(q) == "print") {
      expect_target(*this, ex, q + 1, true, std::to_string(variable(q + 1)));
    } else if (text(q) == "-" && step + 1 < length) {
      expect_input(q + 1, "-");
      expect_target(*this, ex, q + 1, false, "-");
    } else {
      fail_at(*this, q,
              fmt::format("expected {}, got '{}'",
                          step + 1 < length ? "'print' or '-'"
                                            : "'print' (the last statement always has one)",
                          text(q)));
    }
  }
}

M2B_REGISTER_TASK(
    code_execution,
    TaskInfo{
        "code_execution",
        "Straight-line programs over variables a, b, ... (start at 0, values mod modulus): per step one "
        "statement (x = c | x = y | x = y + c | x += y | swap x y, padded with - to 5 tokens) and a "
        "query slot (print x -> its value | - -); only printed values are scored. Length = number of statements.",
        CodeExecutionTask::option_specs(), [](const Options& o) -> std::unique_ptr<Task> {
          return std::make_unique<CodeExecutionTask>(o);
        }});

}  // namespace m2b::tasks
