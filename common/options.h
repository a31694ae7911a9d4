#pragma once
// Typed, validated options: the one schema that task parameters, mixer options and the suite
// validator share, so a bad value reads the same wherever it was given.
#include <cstdint>
#include <limits>
#include <map>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

namespace m2b {

using OptionValue = std::variant<bool, int64_t, double, std::string>;

enum class OptionType { Bool, Int, Float, String };

struct OptionSpec {
  std::string name;
  OptionType type;
  OptionValue default_value;
  std::string help;
  double min = -std::numeric_limits<double>::infinity();  // inclusive, numeric types only
  double max = std::numeric_limits<double>::infinity();
  std::vector<std::string> choices;  // String type only; empty means any string
  // Left out of a run's canonical config (and so of its id) while it holds its default: for an
  // option added after runs were recorded, whose ids must not change.
  bool omit_when_default = false;
};

// Thrown for an unknown key, a wrong type or a value out of range. `key` is the offending
// option's name so that a caller holding source positions (the YAML loader) can point at it.
class OptionError : public std::invalid_argument {
 public:
  OptionError(std::string key, const std::string& message)
      : std::invalid_argument(message), key_(std::move(key)) {}
  const std::string& key() const { return key_; }

 private:
  std::string key_;
};

class Options {
 public:
  Options() = default;
  explicit Options(std::map<std::string, OptionValue> values) : values_(std::move(values)) {}
  bool get_bool(const std::string& name) const;
  int64_t get_int(const std::string& name) const;
  double get_float(const std::string& name) const;  // an Int value reads as a float too
  const std::string& get_string(const std::string& name) const;
  const std::map<std::string, OptionValue>& values() const { return values_; }

 private:
  const OptionValue& at(const std::string& name) const;
  std::map<std::string, OptionValue> values_;
};

// Checks `given` against `spec` and fills in defaults. `owner` names what the options belong to
// ("task s3", "mixer m2rnn") in messages, e.g.
//   mixer m2rnn: option 'k_dim' must be an integer in [1, 1024], got 0
Options resolve_options(const std::string& owner, const std::vector<OptionSpec>& spec,
                        const std::map<std::string, OptionValue>& given);

std::string to_string(const OptionValue& value);
// Text as an error message quotes it: its first line, cut to 60 characters ("..." where cut),
// so that a huge or multi-line value cannot bury the message.
std::string excerpt(const std::string& text);
std::string to_string(OptionType type);
// One line per option: name, type, default, range or choices, help.
std::string describe_options(const std::vector<OptionSpec>& spec);

}  // namespace m2b
