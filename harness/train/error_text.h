#pragma once
// What an error says, as the user reads it: one line. A failed TORCH_CHECK (c10::Error) appends
// a C++ backtrace to what(); its message, with the check's context, is what_without_backtrace().
#include <exception>
#include <string>

#include <c10/util/Exception.h>

namespace m2b {

inline std::string error_text(const std::exception& e) {
  if (const auto* torch_error = dynamic_cast<const c10::Error*>(&e))
    return torch_error->what_without_backtrace();
  return e.what();
}

}  // namespace m2b
