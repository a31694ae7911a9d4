#include "tasks/entity_tracking.h"

#include <fmt/format.h>

#include "tasks/registry.h"

namespace m2b::tasks {

namespace {

constexpr int64_t kOpSlot = 3;

// The state both the generator and the checker keep: box_of[x] is -1 for a removed object,
// content[b] is -1 for an empty box.
struct Boxes {
  std::vector<int64_t> box_of, content;
  Boxes(int64_t boxes, int64_t objects) : box_of(objects, -1), content(boxes, -1) {}
  void place(int64_t x, int64_t b) {
    if (box_of[x] >= 0) content[box_of[x]] = -1;
    box_of[x] = b;
    if (b >= 0) content[b] = x;
  }
  void swap_boxes(int64_t a, int64_t b) {
    std::swap(content[a], content[b]);
    if (content[a] >= 0) box_of[content[a]] = a;
    if (content[b] >= 0) box_of[content[b]] = b;
  }
};

// The index of the k-th (from 0) entry of `v` that is occupied (>= 0), or free (-1).
int64_t nth(const std::vector<int64_t>& v, bool occupied, uint64_t k) {
  for (size_t i = 0; i < v.size(); ++i)
    if ((v[i] >= 0) == occupied && k-- == 0) return static_cast<int64_t>(i);
  throw std::logic_error("entity_tracking: no such entry");
}

}  // namespace

const std::vector<OptionSpec>& EntityTrackingTask::option_specs() {
  static const std::vector<OptionSpec> specs = {
      {"boxes", OptionType::Int, int64_t{5}, "number of boxes", 1, 256},
      {"objects", OptionType::Int, int64_t{3}, "number of objects (at most boxes: one per box)", 1,
       256},
      {"query_prob", OptionType::Float, 0.5,
       "chance of a query after each step (the last step always has one; 0 = one query at the end)",
       0, 1},
      {"swap", OptionType::Bool, true, "allow `swap bJ bK` (needs boxes >= 2)"},
      {"remove", OptionType::Bool, true, "allow `remove oX` and `put oX bK`"},
  };
  return specs;
}

const std::string& EntityTrackingTask::name() const {
  static const std::string name = "entity_tracking";
  return name;
}

EntityTrackingTask::EntityTrackingTask(const Options& o)
    : boxes_(o.get_int("boxes")), objects_(o.get_int("objects")),
      query_prob_(o.get_float("query_prob")), swap_(o.get_bool("swap")),
      remove_(o.get_bool("remove")) {
  if (objects_ > boxes_)
    throw TaskError(fmt::format(
        "entity_tracking: objects ({}) must not exceed boxes ({}): each box holds at most one object",
        objects_, boxes_));
  if (swap_ && boxes_ < 2)
    throw TaskError(
        "entity_tracking: swap=true needs boxes >= 2 (got boxes 1); set swap=false or add boxes");
  if (!swap_ && !remove_ && objects_ == boxes_)
    throw TaskError(fmt::format(
        "entity_tracking: with swap=false, remove=false and objects == boxes ({}) no operation is "
        "possible; enable swap or remove, or use fewer objects than boxes",
        boxes_));
  pad_ = vocab_.add("-");
  move_ = vocab_.add("move");
  swap_op_ = vocab_.add("swap");
  remove_op_ = vocab_.add("remove");
  put_ = vocab_.add("put");
  where_ = vocab_.add("where");
  what_ = vocab_.add("what");
  out_ = vocab_.add("out");
  empty_ = vocab_.add("empty");
  box0_ = vocab_.add_indexed("b", boxes_);
  object0_ = vocab_.add_indexed("o", objects_);
}

int64_t EntityTrackingTask::token_count(int64_t length) const {
  return 2 * objects_ + (kOpSlot + kQuerySlot) * length;
}

Example EntityTrackingTask::sample(int64_t length, Rng& rng) const {
  require_length(*this, length);
  ExampleWriter out(pad_, token_count(length));
  Boxes state(boxes_, objects_);
  auto object = [&](int64_t x) { return static_cast<Token>(object0_ + x); };
  auto box = [&](int64_t b) { return static_cast<Token>(box0_ + b); };
  // The initial assignment: a uniform injection of objects into boxes (partial Fisher-Yates).
  std::vector<int64_t> order(boxes_);
  for (int64_t b = 0; b < boxes_; ++b) order[b] = b;
  for (int64_t x = 0; x < objects_; ++x) {
    std::swap(order[x], order[x + rng.below(boxes_ - x)]);
    state.place(x, order[x]);
    out.add(object(x));
    out.add(box(order[x]));
  }
  int64_t placed = objects_;
  for (int64_t step = 0; step < length; ++step) {
    const int64_t empty = boxes_ - placed, removed = objects_ - placed;
    Token kinds[4];
    int n_kinds = 0;
    if (placed > 0 && empty > 0) kinds[n_kinds++] = move_;
    if (swap_) kinds[n_kinds++] = swap_op_;
    if (remove_ && placed > 0) kinds[n_kinds++] = remove_op_;
    if (remove_ && removed > 0) kinds[n_kinds++] = put_;
    const Token kind = kinds[rng.below(n_kinds)];
    out.add(kind);
    if (kind == move_ || kind == put_) {
      const int64_t x =
          nth(state.box_of, kind == move_, rng.below(kind == move_ ? placed : removed));
      const int64_t b = nth(state.content, false, rng.below(empty));
      placed += kind == put_;
      state.place(x, b);
      out.add(object(x));
      out.add(box(b));
    } else if (kind == swap_op_) {
      const int64_t a = rng.below(boxes_);
      const int64_t b = (a + 1 + rng.below(boxes_ - 1)) % boxes_;
      state.swap_boxes(a, b);
      out.add(box(a));
      out.add(box(b));
    } else {
      const int64_t x = nth(state.box_of, true, rng.below(placed));
      --placed;
      state.place(x, -1);
      out.add(object(x));
      out.add(pad_);
    }
    if (!query_after(step, length, query_prob_, rng)) {
      out.add(pad_);
      out.add(pad_);
    } else if (rng.below(2) == 0) {
      const int64_t x = rng.below(objects_);
      out.add(where_);
      out.add_scored(object(x), state.box_of[x] < 0 ? out_ : box(state.box_of[x]));
    } else {
      const int64_t b = rng.below(boxes_);
      out.add(what_);
      out.add_scored(box(b), state.content[b] < 0 ? empty_ : object(state.content[b]));
    }
  }
  return out.take();
}

void EntityTrackingTask::check(const Example& ex) const {
  check_tokens(*this, ex);
  const int64_t length = slotted_length(*this, ex, 2 * objects_, kOpSlot + kQuerySlot);
  const auto& words = vocabulary();
  auto text = [&](int64_t pos) -> const std::string& { return words[ex.inputs[pos]]; };
  auto index = [&](int64_t pos, const char* prefix, int64_t count) {
    const int64_t i = parse_indexed(text(pos), prefix);
    if (i < 0 || i >= count)
      fail_at(*this, pos,
              fmt::format("expected {}0..{}{}, got '{}'", prefix, prefix, count - 1, text(pos)));
    return i;
  };
  auto expect_input = [&](int64_t pos, const std::string& want) {
    if (text(pos) != want)
      fail_at(*this, pos, fmt::format("expected '{}', got '{}'", want, text(pos)));
  };
  Boxes state(boxes_, objects_);
  for (int64_t x = 0; x < objects_; ++x) {
    if (index(2 * x, "o", objects_) != x) fail_at(*this, 2 * x, fmt::format("expected 'o{}'", x));
    const int64_t b = index(2 * x + 1, "b", boxes_);
    if (state.content[b] >= 0) fail_at(*this, 2 * x + 1, fmt::format("box b{} assigned twice", b));
    state.place(x, b);
    expect_target(*this, ex, 2 * x, false, "-");
    expect_target(*this, ex, 2 * x + 1, false, "-");
  }
  for (int64_t step = 0; step < length; ++step) {
    const int64_t at = 2 * objects_ + step * (kOpSlot + kQuerySlot);
    const std::string& op = text(at);
    if (op == "move" || op == "put") {
      const int64_t x = index(at + 1, "o", objects_), b = index(at + 2, "b", boxes_);
      if ((state.box_of[x] >= 0) != (op == "move"))
        fail_at(*this, at,
                fmt::format("'{}' of o{}, which is {}", op, x, op == "move" ? "out" : "in a box"));
      if (state.content[b] >= 0) fail_at(*this, at + 2, fmt::format("b{} is not empty", b));
      if (op == "put" && !remove_) fail_at(*this, at, "put, but remove=false");
      state.place(x, b);
    } else if (op == "swap") {
      const int64_t a = index(at + 1, "b", boxes_), b = index(at + 2, "b", boxes_);
      if (!swap_) fail_at(*this, at, "swap, but swap=false");
      if (a == b) fail_at(*this, at, fmt::format("swap of b{} with itself", a));
      state.swap_boxes(a, b);
    } else if (op == "remove") {
      const int64_t x = index(at + 1, "o", objects_);
      if (!remove_) fail_at(*this, at, "remove, but remove=false");
      if (state.box_of[x] < 0) fail_at(*this, at, fmt::format("remove of o{}, which is out", x));
      expect_input(at + 2, "-");
      state.place(x, -1);
    } else {
      fail_at(*this, at, fmt::format("expected move, swap, remove or put, got '{}'", op));
    }
    for (int64_t i = 0; i < kOpSlot + 1; ++i) expect_target(*this, ex, at + i, false, "-");
    const int64_t q = at + kOpSlot;
    if (text(q) == "where") {
      const int64_t b = state.box_of[index(q + 1, "o", objects_)];
      expect_target(*this, ex, q + 1, true, b < 0 ? "out" : fmt::format("b{}", b));
    } else if (text(q) == "what") {
      const int64_t x = state.content[index(q + 1, "b", boxes_)];
      expect_target(*this, ex, q + 1, true, x < 0 ? "empty" : fmt::format("o{}", x));
    } else if (text(q) == "-" && step + 1 < length) {
      expect_input(q + 1, "-");
      expect_target(*this, ex, q + 1, false, "-");
    } else {
      fail_at(*this, q,
              fmt::format("expected a query (where, what{}), got '{}'",
                          step + 1 < length ? " or -" : ": the last step always has one", text(q)));
    }
  }
}

M2B_REGISTER_TASK(
    entity_tracking,
    TaskInfo{
        "entity_tracking",
        "Boxes holding at most one object each: an initial assignment (oX bK pairs), then per step "
        "one operation (move oX bK | swap bJ bK | remove oX - | put oX bK) and a query slot "
        "(where oX -> box or out | what bK -> object or empty | - -); only answers are scored. "
        "Length = number of operations.",
        EntityTrackingTask::option_specs(), [](const Options& o) -> std::unique_ptr<Task> {
          return std::make_unique<EntityTrackingTask>(o);
        }});

}  // namespace m2b::tasks
