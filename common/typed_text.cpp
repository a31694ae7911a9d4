#include "common/typed_text.h"

#include <charconv>
#include <cmath>
#include <cstdlib>

namespace m2b {

std::optional<int64_t> parse_int(const std::string& text) {
  int64_t out;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data() + (!text.empty() && text[0] == '+'), end, out);
  if (text.empty() || ec != std::errc() || ptr != end) return std::nullopt;
  return out;
}

std::optional<uint64_t> parse_uint(const std::string& text) {
  uint64_t out;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, out);
  if (text.empty() || ec != std::errc() || ptr != end) return std::nullopt;
  return out;
}

std::optional<double> parse_number(const std::string& text) {
  if (text.empty()) return std::nullopt;
  char* end = nullptr;
  const double out = std::strtod(text.c_str(), &end);
  if (end != text.c_str() + text.size() || !std::isfinite(out)) return std::nullopt;
  return out;
}

std::optional<bool> parse_bool(const std::string& text) {
  if (text == "true" || text == "True") return true;
  if (text == "false" || text == "False") return false;
  return std::nullopt;
}

OptionValue parse_option_value(OptionType type, const std::string& text) {
  switch (type) {
    case OptionType::Bool:
      if (auto b = parse_bool(text)) return *b;
      break;
    case OptionType::Int:
      if (auto i = parse_int(text)) return *i;
      break;
    case OptionType::Float:
      if (auto i = parse_int(text)) return *i;
      if (auto d = parse_number(text)) return *d;
      break;
    case OptionType::String: break;
  }
  return text;
}

}  // namespace m2b
