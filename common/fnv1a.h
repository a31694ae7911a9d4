#pragma once
// FNV-1a, 64 bit: the hash of a run's config (its id) and of a checkpoint's bytes (to catch
// damage on disk, which LibTorch's loader does not check for).
#include <cstdint>
#include <string_view>

namespace m2b {

inline uint64_t fnv1a64(std::string_view bytes) {
  uint64_t hash = 0xcbf29ce484222325ull;
  for (unsigned char c : bytes) {
    hash ^= c;
    hash *= 0x100000001b3ull;
  }
  return hash;
}

}  // namespace m2b
