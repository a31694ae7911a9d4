#include "models/ops/ssd.h"

#include <fmt/format.h>

#include <algorithm>
#include <vector>

#include "models/ops/linear_recurrence.h"

namespace m2b::models::ops {
namespace {

// Sequence shapes; the step checks its inputs as a sequence of one.
void check_ssd_inputs(const torch::Tensor& x, const torch::Tensor& a, const torch::Tensor& B,
                      const torch::Tensor& C, const torch::Tensor& state) {
  require("ssd", x.dim() == 4 && x.size(1) > 0,
          "x must be (batch, seq, heads, head_dim) with seq >= 1, got " + shape_of(x));
  const int64_t b = x.size(0), S = x.size(1), H = x.size(2), P = x.size(3);
  require(
      "ssd", a.sizes() == torch::IntArrayRef({b, S, H}),
      fmt::format("a must be (batch, seq, heads) = ({}, {}, {}), got {}", b, S, H, shape_of(a)));
  require("ssd", B.dim() == 4 && B.size(0) == b && B.size(1) == S,
          fmt::format("B must be (batch, seq, groups, d_state) with batch {} and seq {}, got {}", b,
                      S, shape_of(B)));
  require("ssd", C.sizes() == B.sizes(),
          fmt::format("C must have the shape of B {}, got {}", shape_of(B), shape_of(C)));
  require("ssd", H % B.size(2) == 0,
          fmt::format("the groups of B and C ({}) must divide the heads of x ({})", B.size(2), H));
  require(
      "ssd", !state.defined() || state.sizes() == torch::IntArrayRef({b, H, B.size(3), P}),
      fmt::format("the state must be (batch, heads, d_state, head_dim) = ({}, {}, {}, {}), got {}",
                  b, H, B.size(3), P, shape_of(state)));
}

// (..., G, N) -> (..., H, N): head h reads group h / (H / G).
torch::Tensor expand_groups(const torch::Tensor& t, int64_t heads) {
  const int64_t G = t.size(-2);
  auto sizes = t.sizes().vec();
  sizes.insert(sizes.end() - 1, heads / G);
  auto out_sizes = t.sizes().vec();
  out_sizes[out_sizes.size() - 2] = heads;
  return t.unsqueeze(-2).expand(sizes).reshape(out_sizes);
}

}  // namespace

SsdResult ssd_step(const torch::Tensor& x, const torch::Tensor& a, const torch::Tensor& B,
                   const torch::Tensor& C, const torch::Tensor& state) {
  check_ssd_inputs(x.unsqueeze(1), a.unsqueeze(1), B.unsqueeze(1), C.unsqueeze(1), state);
  const int64_t H = x.size(1);
  auto Bh = expand_groups(B, H), Ch = expand_groups(C, H);  // (b, H, N)
  auto update = Bh.unsqueeze(-1) * x.unsqueeze(-2);         // (b, H, N, P)
  auto next = state.defined() ? a.exp().unsqueeze(-1).unsqueeze(-1) * state + update : update;
  return {(Ch.unsqueeze(-1) * next).sum(-2), next};
}

SsdResult ssd_recurrent(const torch::Tensor& x, const torch::Tensor& a, const torch::Tensor& B,
                        const torch::Tensor& C, const torch::Tensor& initial_state) {
  check_ssd_inputs(x, a, B, C, initial_state);
  std::vector<torch::Tensor> ys;
  torch::Tensor state = initial_state;
  for (int64_t t = 0; t < x.size(1); ++t) {
    auto out = ssd_step(x.select(1, t), a.select(1, t), B.select(1, t), C.select(1, t), state);
    ys.push_back(out.y);
    state = out.final_state;
  }
  return {torch::stack(ys, 1), state};
}

SsdResult ssd_naive(const torch::Tensor& x, const torch::Tensor& a, const torch::Tensor& B,
                    const torch::Tensor& C, const torch::Tensor& initial_state) {
  check_ssd_inputs(x, a, B, C, initial_state);
  const int64_t S = x.size(1), H = x.size(2);
  auto Bh = expand_groups(B, H), Ch = expand_groups(C, H);  // (b, S, H, N)
  auto decay = segsum(a.transpose(1, 2)).exp();             // (b, H, t, s)
  auto scores = torch::einsum("bthn,bshn->bhts", {Ch, Bh}) * decay;
  auto y = torch::einsum("bhts,bshp->bthp", {scores, x});
  auto decay_to_end = decay.select(-2, S - 1);  // (b, H, s)
  auto final_state = torch::einsum("bhs,bshn,bshp->bhnp", {decay_to_end, Bh, x});
  if (initial_state.defined()) {
    auto decay_from_start = a.cumsum(1).exp();  // (b, S, H)
    y = y + torch::einsum("bthn,bhnp->bthp", {Ch, initial_state}) * decay_from_start.unsqueeze(-1);
    final_state =
        final_state + decay_from_start.select(1, S - 1).unsqueeze(-1).unsqueeze(-1) * initial_state;
  }
  return {y, final_state};
}

SsdResult ssd_chunked(const torch::Tensor& x, const torch::Tensor& a, const torch::Tensor& B,
                      const torch::Tensor& C, int64_t chunk, const torch::Tensor& initial_state) {
  check_ssd_inputs(x, a, B, C, initial_state);
  require("ssd", chunk >= 1, fmt::format("chunk must be >= 1, got {}", chunk));
  const int64_t b = x.size(0), S = x.size(1), H = x.size(2), P = x.size(3);
  const int64_t G = B.size(2), N = B.size(3), R = H / G;
  const int64_t L = std::min(chunk, S), nc = (S + L - 1) / L;
  // Letters: c chunk, l and s positions in a chunk, g group, r head within the group.
  auto xc = pad_time(x, nc * L).view({b, nc, L, G, R, P});
  auto Bc = pad_time(B, nc * L).view({b, nc, L, G, N});
  auto Cc = pad_time(C, nc * L).view({b, nc, L, G, N});
  auto ac = pad_time(a, nc * L).view({b, nc, L, G, R}).permute({0, 3, 4, 1, 2});  // (b,g,r,c,l)
  auto a_cum = ac.cumsum(-1);

  // 1. Within each chunk: the quadratic form, C_l . B_s shared by a group's heads.
  auto decay = segsum(ac).exp();  // (b,g,r,c,l,s)
  auto CB = torch::einsum("bclgn,bcsgn->bgcls", {Cc, Bc}).unsqueeze(2);
  auto y_diag = torch::einsum("bgrcls,bcsgrp->bclgrp", {CB * decay, xc});

  // 2. Each chunk's own contribution to the state at its end.
  auto decay_to_end = decay.select(-2, L - 1);
  auto chunk_states = torch::einsum("bclgn,bgrcl,bclgrp->bcgrnp", {Bc, decay_to_end, xc});

  // 3. The states at the chunk boundaries: boundary z sums the contributions at boundaries
  // c <= z (the initial state is boundary 0), each decayed by the chunks c..z-1 in between.
  auto start = initial_state.defined() ? initial_state.view({b, 1, G, R, N, P})
                                       : chunk_states.new_zeros({b, 1, G, R, N, P});
  auto totals = torch::constant_pad_nd(a_cum.select(-1, L - 1), {1, 0}, 0);  // (b,g,r,1+c)
  auto boundary_decay = segsum(totals).exp();                                // (b,g,r,z,c)
  auto states =
      torch::einsum("bgrzc,bcgrnp->bzgrnp", {boundary_decay, torch::cat({start, chunk_states}, 1)});

  // 4. What each chunk reads of the state at its start.
  auto y_off =
      torch::einsum("bclgn,bcgrnp,bgrcl->bclgrp", {Cc, states.narrow(1, 0, nc), a_cum.exp()});
  auto y = (y_diag + y_off).reshape({b, nc * L, H, P}).narrow(1, 0, S);
  return {y, states.select(1, nc).reshape({b, H, N, P})};
}

}  // namespace m2b::models::ops
