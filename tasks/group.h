#pragma once
// Finite groups given as permutations: the element list and its multiplication table are all a
// word problem needs, whatever the group.
#include <cstdint>
#include <string>
#include <vector>

namespace m2b::tasks {

// Composition convention, used everywhere in tasks/: (a ∘ b)(i) = a(b(i)), i.e. apply b first.
// An element is a permutation in one-line notation: it sends point i to perm[i].
struct Group {
  std::string name;
  std::vector<std::vector<int>> perms;  // element index -> one-line notation
  std::vector<std::string> names;       // element index -> token text
  std::vector<int32_t> table;           // table[a * order() + b] = index of a ∘ b
  int32_t identity = 0;

  int64_t order() const { return static_cast<int64_t>(perms.size()); }
  int degree() const { return perms.empty() ? 0 : static_cast<int>(perms[0].size()); }
  int32_t compose(int32_t a, int32_t b) const { return table[a * perms.size() + b]; }
};

// Builds the table; throws std::logic_error if `perms` is not closed under composition or lacks
// the identity (a bug in the caller, not a user error).
Group make_group(std::string name, std::vector<std::vector<int>> perms,
                 std::vector<std::string> names);

// All n! permutations of n points in lexicographic order, named by their one-line notation
// ("021"), so n <= 10.
Group symmetric_group(int n);
// The even permutations of n points, same order and names.
Group alternating_group(int n);
// Z_n as the rotations i -> (i + k) mod n, named "k"; the product adds the names mod n.
Group cyclic_group(int n);

}  // namespace m2b::tasks
