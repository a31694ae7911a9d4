#include "tasks/group.h"

#include <algorithm>
#include <numeric>
#include <stdexcept>
#include <unordered_map>

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace m2b::tasks {

namespace {

// Two bytes per point: degrees up to 65536, and cheap to hash for the Z_n tables.
std::string key_of(const std::vector<int>& perm) {
  std::string key;
  key.reserve(2 * perm.size());
  for (int p : perm) {
    key += static_cast<char>(p & 0xFF);
    key += static_cast<char>(p >> 8);
  }
  return key;
}

bool is_even(const std::vector<int>& perm) {
  int inversions = 0;
  for (size_t i = 0; i < perm.size(); ++i)
    for (size_t j = i + 1; j < perm.size(); ++j) inversions += perm[i] > perm[j];
  return inversions % 2 == 0;
}

Group permutation_group(std::string name, int n, bool even_only) {
  if (n < 1 || n > 10)
    throw std::invalid_argument(fmt::format("{}: degree must be in [1, 10], got {}", name, n));
  std::vector<int> perm(n);
  std::iota(perm.begin(), perm.end(), 0);
  std::vector<std::vector<int>> perms;
  std::vector<std::string> names;
  do {
    if (even_only && !is_even(perm)) continue;
    perms.push_back(perm);
    names.push_back(fmt::format("{}", fmt::join(perm, "")));
  } while (std::next_permutation(perm.begin(), perm.end()));
  return make_group(std::move(name), std::move(perms), std::move(names));
}

}  // namespace

Group make_group(std::string name, std::vector<std::vector<int>> perms,
                 std::vector<std::string> names) {
  Group g;
  g.name = std::move(name);
  const size_t order = perms.size();
  std::unordered_map<std::string, int32_t> index;
  for (size_t e = 0; e < order; ++e) index.emplace(key_of(perms[e]), static_cast<int32_t>(e));
  std::vector<int> id(order == 0 ? 0 : perms[0].size());
  std::iota(id.begin(), id.end(), 0);
  auto id_it = index.find(key_of(id));
  if (order == 0 || names.size() != order || id_it == index.end())
    throw std::logic_error(fmt::format("group {}: empty, misnamed or without identity", g.name));
  g.identity = id_it->second;
  g.table.resize(order * order);
  std::vector<int> product(id.size());
  for (size_t a = 0; a < order; ++a)
    for (size_t b = 0; b < order; ++b) {
      for (size_t i = 0; i < id.size(); ++i) product[i] = perms[a][perms[b][i]];
      auto it = index.find(key_of(product));
      if (it == index.end())
        throw std::logic_error(fmt::format("group {}: not closed under composition", g.name));
      g.table[a * order + b] = it->second;
    }
  g.perms = std::move(perms);
  g.names = std::move(names);
  return g;
}

Group symmetric_group(int n) { return permutation_group(fmt::format("S{}", n), n, false); }

Group alternating_group(int n) { return permutation_group(fmt::format("A{}", n), n, true); }

Group cyclic_group(int n) {
  if (n < 1) throw std::invalid_argument(fmt::format("Z_n: n must be positive, got {}", n));
  std::vector<std::vector<int>> perms(n, std::vector<int>(n));
  std::vector<std::string> names(n);
  for (int k = 0; k < n; ++k) {
    for (int i = 0; i < n; ++i) perms[k][i] = (i + k) % n;
    names[k] = std::to_string(k);
  }
  return make_group(fmt::format("Z{}", n), std::move(perms), std::move(names));
}

}  // namespace m2b::tasks
