#pragma once
// Typed values from text: the one reading of integers, numbers and flags that suite files, the
// command line (--param name=value) and the paper's reference numbers share, so that a value
// reads the same wherever it is given. Each returns none for text that is not one; the caller
// says what was expected, where.
#include <cstdint>
#include <optional>
#include <string>

#include "common/options.h"

namespace m2b {

// Decimal, with an optional sign: "12", "+12", "-3"; not "1.0", "1e3", " 12" or "0x10".
std::optional<int64_t> parse_int(const std::string& text);
// Decimal digits only: "0" .. "18446744073709551615" (seeds).
std::optional<uint64_t> parse_uint(const std::string& text);
// A finite number: "0.25", "3", "1e-4"; not "inf", "nan" or "0.5x".
std::optional<double> parse_number(const std::string& text);
// true or false (also True and False, as YAML and Python write them).
std::optional<bool> parse_bool(const std::string& text);

// The value of an option of `type` given as text. Text that does not read as the type stays text,
// for resolve_options to reject with the option's name, what is valid and the text as given. An
// integer reads as an Int for a Float option too; resolve_options widens it.
OptionValue parse_option_value(OptionType type, const std::string& text);

}  // namespace m2b
