#include "common/options.h"

#include <algorithm>
#include <cmath>
#include <fmt/format.h>
#include <fmt/ranges.h>

namespace m2b {

const OptionValue& Options::at(const std::string& name) const {
  auto it = values_.find(name);
  if (it == values_.end()) throw OptionError(name, fmt::format("no option '{}'", name));
  return it->second;
}

bool Options::get_bool(const std::string& name) const { return std::get<bool>(at(name)); }
int64_t Options::get_int(const std::string& name) const { return std::get<int64_t>(at(name)); }
const std::string& Options::get_string(const std::string& name) const {
  return std::get<std::string>(at(name));
}
double Options::get_float(const std::string& name) const {
  const OptionValue& v = at(name);
  if (auto i = std::get_if<int64_t>(&v)) return static_cast<double>(*i);
  return std::get<double>(v);
}

std::string to_string(const OptionValue& value) {
  return std::visit(
      [](const auto& v) -> std::string {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, bool>) return v ? "true" : "false";
        else if constexpr (std::is_same_v<T, std::string>) return v;
        else return fmt::format("{}", v);
      },
      value);
}

std::string excerpt(const std::string& text) {
  constexpr size_t kWidth = 60;
  const size_t end = std::min(text.find('\n'), kWidth);
  return end >= text.size() ? text : text.substr(0, end) + "...";
}

std::string to_string(OptionType type) {
  switch (type) {
    case OptionType::Bool: return "bool";
    case OptionType::Int: return "int";
    case OptionType::Float: return "float";
    case OptionType::String: return "string";
  }
  return "?";
}

static std::string range_text(const OptionSpec& s) {
  if (!s.choices.empty()) return fmt::format("one of {}", fmt::join(s.choices, ", "));
  if (s.type != OptionType::Int && s.type != OptionType::Float) return "";
  auto bound = [](double b) {
    return std::isinf(b) ? std::string(b < 0 ? "-inf" : "inf") : fmt::format("{}", b);
  };
  if (std::isinf(s.min) && std::isinf(s.max)) return "";
  return fmt::format("in [{}, {}]", bound(s.min), bound(s.max));
}

static std::string expected_text(const OptionSpec& s) {
  std::string kind = s.type == OptionType::Int     ? "an integer"
                     : s.type == OptionType::Float ? "a number"
                     : s.type == OptionType::Bool  ? "true or false"
                                                   : "a string";
  std::string range = range_text(s);
  return range.empty() ? kind : kind + " " + range;
}

static std::string valid_names(const std::vector<OptionSpec>& spec) {
  std::vector<std::string> names;
  for (const auto& s : spec) names.push_back(s.name);
  return names.empty() ? "none" : fmt::format("{}", fmt::join(names, ", "));
}

Options resolve_options(const std::string& owner, const std::vector<OptionSpec>& spec,
                        const std::map<std::string, OptionValue>& given) {
  std::map<std::string, OptionValue> out;
  for (const auto& [key, value] : given) {
    bool known = false;
    for (const auto& s : spec) known = known || s.name == key;
    if (!known)
      throw OptionError(key, fmt::format("{}: unknown option '{}' (valid: {})", owner, excerpt(key),
                                         valid_names(spec)));
  }
  for (const auto& s : spec) {
    auto it = given.find(s.name);
    if (it == given.end()) {
      out[s.name] = s.default_value;
      continue;
    }
    const OptionValue& v = it->second;
    auto fail = [&] {
      throw OptionError(s.name, fmt::format("{}: option '{}' must be {}, got {}", owner, s.name,
                                            expected_text(s), excerpt(to_string(v))));
    };
    OptionValue value = v;
    switch (s.type) {
      case OptionType::Bool:
        if (!std::holds_alternative<bool>(v)) fail();
        break;
      case OptionType::Int:
        if (!std::holds_alternative<int64_t>(v)) fail();
        break;
      case OptionType::Float:
        if (auto i = std::get_if<int64_t>(&v)) value = static_cast<double>(*i);
        else if (!std::holds_alternative<double>(v)) fail();
        break;
      case OptionType::String:
        if (!std::holds_alternative<std::string>(v)) fail();
        break;
    }
    if (s.type == OptionType::Int || s.type == OptionType::Float) {
      double x = s.type == OptionType::Int ? static_cast<double>(std::get<int64_t>(value))
                                           : std::get<double>(value);
      if (!(x >= s.min && x <= s.max)) fail();  // also rejects NaN
    }
    if (s.type == OptionType::String && !s.choices.empty()) {
      bool ok = false;
      for (const auto& c : s.choices) ok = ok || c == std::get<std::string>(value);
      if (!ok) fail();
    }
    out[s.name] = value;
  }
  return Options(std::move(out));
}

std::string describe_options(const std::vector<OptionSpec>& spec) {
  std::string out;
  for (const auto& s : spec) {
    std::string range = range_text(s);
    out += fmt::format("  {:<18} {:<6} default {:<10} {}{}{}\n", s.name, to_string(s.type),
                       to_string(s.default_value), s.help, range.empty() ? "" : "; ", range);
  }
  return out;
}

}  // namespace m2b
