#pragma once
// A portable random generator: the same seed gives the same bytes with every compiler and
// standard library, which std::*_distribution does not promise. The stream is splitmix64
// (Steele, Lea & Flood 2014): one 64-bit add and a bijective mix per draw, period 2^64.
#include <cstdint>
#include <stdexcept>

namespace m2b::tasks {

// The splitmix64 finaliser: a bijection of 64-bit words with full avalanche.
constexpr uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// One seed per purpose from one base seed, e.g. derive_seed(eval_seed, length, index), so
// streams never overlap by accident. Order matters: derive_seed(s, 1, 2) != derive_seed(s, 2, 1).
constexpr uint64_t derive_seed(uint64_t base) { return mix64(base + 0x9E3779B97F4A7C15ULL); }
template <typename... Rest>
constexpr uint64_t derive_seed(uint64_t base, uint64_t first, Rest... rest) {
  return derive_seed(derive_seed(base) ^ mix64(first ^ 0xD6E8FEB86659FD93ULL),
                     static_cast<uint64_t>(rest)...);
}

class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}

  uint64_t next_u64() {
    state_ += 0x9E3779B97F4A7C15ULL;
    return mix64(state_);
  }
  uint32_t next_u32() { return static_cast<uint32_t>(next_u64() >> 32); }

  // Uniform in [0, n), unbiased: Lemire's multiply-shift with rejection of the short tail.
  uint64_t below(uint64_t n) {
    if (n == 0) throw std::invalid_argument("Rng::below: n must be positive, got 0");
    unsigned __int128 m = static_cast<unsigned __int128>(next_u64()) * n;
    uint64_t low = static_cast<uint64_t>(m);
    if (low < n) {
      const uint64_t threshold = (0 - n) % n;  // 2^64 mod n
      while (low < threshold) {
        m = static_cast<unsigned __int128>(next_u64()) * n;
        low = static_cast<uint64_t>(m);
      }
    }
    return static_cast<uint64_t>(m >> 64);
  }

  // Uniform in [0, 1) on the 2^-53 grid.
  double uniform01() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }

  // True with probability p (p <= 0 never, p >= 1 always).
  bool chance(double p) { return uniform01() < p; }

 private:
  uint64_t state_;
};

}  // namespace m2b::tasks
