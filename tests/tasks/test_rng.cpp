#include <cstdlib>
#include <set>
#include <stdexcept>
#include <vector>

#include "tests/catch.h"
#include "tasks/rng.h"

using m2b::tasks::derive_seed;
using m2b::tasks::Rng;

TEST_CASE("rng follows the published splitmix64 sequence", "[rng]") {
  // Reference vector of splitmix64 from seed 0 (Vigna's splitmix64.c).
  Rng rng(0);
  CHECK(rng.next_u64() == 0xE220A8397B1DCDAFULL);
  CHECK(rng.next_u64() == 0x6E789E6AA1B965F4ULL);
  CHECK(rng.next_u64() == 0x06C45D188009454FULL);
}

TEST_CASE("rng streams repeat for one seed and differ between seeds", "[rng]") {
  Rng a(42), b(42), c(43);
  bool differs = false;
  for (int i = 0; i < 100; ++i) {
    const uint64_t x = a.next_u64();
    CHECK(x == b.next_u64());
    differs = differs || x != c.next_u64();
  }
  CHECK(differs);
  CHECK(Rng(7).next_u32() == static_cast<uint32_t>(Rng(7).next_u64() >> 32));
}

TEST_CASE("below is in range, covers it evenly and rejects zero", "[rng]") {
  Rng rng(1);
  CHECK_THROWS_AS(rng.below(0), std::invalid_argument);
  for (int i = 0; i < 100; ++i) CHECK(rng.below(1) == 0);
  // 6 buckets, 60000 draws: each count is 10000 +- ~91 (one standard deviation).
  std::vector<int> counts(6, 0);
  for (int i = 0; i < 60000; ++i) {
    const uint64_t x = rng.below(6);
    REQUIRE(x < 6);
    ++counts[x];
  }
  for (int c : counts) CHECK(std::abs(c - 10000) < 500);
  // A bound just above 2^63: a biased modulo would put two thirds of the draws below 2^62.
  const uint64_t n = (1ULL << 63) + (1ULL << 62);
  int low = 0;
  for (int i = 0; i < 20000; ++i) low += rng.below(n) < (1ULL << 62);
  CHECK(std::abs(low - 20000 / 3) < 400);
}

TEST_CASE("uniform01 lies in [0, 1) with mean one half", "[rng]") {
  Rng rng(2);
  double sum = 0;
  for (int i = 0; i < 20000; ++i) {
    const double u = rng.uniform01();
    REQUIRE(u >= 0.0);
    REQUIRE(u < 1.0);
    sum += u;
  }
  CHECK(std::abs(sum / 20000 - 0.5) < 0.01);
  CHECK_FALSE(rng.chance(0.0));
  CHECK(rng.chance(1.0));
}

TEST_CASE("derive_seed gives distinct, order-sensitive seeds", "[rng]") {
  CHECK(derive_seed(5, 1, 2) == derive_seed(5, 1, 2));
  CHECK(derive_seed(5, 1, 2) != derive_seed(5, 2, 1));
  CHECK(derive_seed(5, 1) != derive_seed(6, 1));
  CHECK(derive_seed(5) != derive_seed(5, 0));
  std::set<uint64_t> seen;
  for (uint64_t length = 1; length <= 64; ++length)
    for (uint64_t i = 0; i < 64; ++i) seen.insert(derive_seed(1234, length, i));
  CHECK(seen.size() == 64 * 64);
}
