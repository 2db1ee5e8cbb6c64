#include "vrm/manager/capacity_calendar.h"

// How a host's bookings are kept. Usage over time is a step function: the sum of every
// booking's usage at that instant. It is stored as its changes, a treap keyed by time whose
// node holds the change of each resource at that instant (a booking [from, to) adds +u at
// `from` and -u at `to`); each node also holds, for its subtree, the sum of the changes and
// the highest running sum (the "max prefix"). Then the usage at t is a prefix sum, and the
// peak over [from, to) is the usage at `from` or the highest prefix sum at a change inside
// (from, to): both one descent, O(log n) however many bookings overlap the window and however
// much history the host has. Changes that cancel out (unbook) remove their node, so a calendar
// after book + unbook is exactly as before.
//
// Nodes live in one vector per host (indices, not pointers): a host's bookings are copied
// (copyOf) by copying two vectors. Priorities are a hash of the key, so equal bookings give
// equal trees in every run.
//
// Changes are not put in the tree as they come: they wait in a list until the next question.
// The manager rebuilds a host by clearing it and booking its hundreds of VMs and moves one by
// one, and inserting each (with its rotations and node updates) cost more than the rest of
// the rebuild. At the next question the waiting changes are sorted and merged (equal instants
// summed, zero sums dropped); then, if they are many for the tree, the tree's changes and
// theirs are merged into one sorted run and the treap is built from it in one pass (the
// Cartesian tree by priority on a stack, linear); a few are inserted one by one.
//
// Exclusive windows are few (one per dedicated reservation on its own hosts) and keep their
// Boost.ICL interval_map of owner sets, which stays inside this file.
#include <algorithm>
#include <array>
#include <boost/icl/interval_map.hpp>
#include <limits>
#include <set>
#include <tuple>

namespace vrm::manager {

namespace icl = boost::icl;
using Interval = icl::right_open_interval<TimeNs>;
// Owners of exclusive windows; a segment with two owners is a double booking.
using OwnerMap = icl::interval_map<TimeNs, std::set<std::string>, icl::partial_absorber, std::less,
                                   icl::inplace_plus, icl::inter_section, Interval>;

namespace {

constexpr int kResources = 3;  // cpu, memory, nic: the order of Usage and of the checks
constexpr const char* kResourceNames[kResources] = {"cpu cores", "memory bytes", "nic bytes/s"};
using Amounts = std::array<std::int64_t, kResources>;
// Below any running sum (sums stay far from the int64 range: bytes of one host).
constexpr std::int64_t kNone = std::numeric_limits<std::int64_t>::min() / 4;
constexpr Amounts kNoneAmounts{kNone, kNone, kNone};
// Where the changes before the forgetting horizon are folded (see forgetBefore).
constexpr TimeNs kFolded = std::numeric_limits<TimeNs>::min();

Amounts amountsOf(const Usage& u) { return {u.cpuCores, u.memoryBytes, u.nicBytesPerSec}; }
Usage usageOf(const Amounts& a) { return {a[0], a[1], a[2]}; }
std::int64_t capOf(const Usage& cap, int r) { return amountsOf(cap)[static_cast<std::size_t>(r)]; }

std::uint32_t priorityOf(TimeNs key) {  // splitmix64's finaliser
  auto z = static_cast<std::uint64_t>(key) + 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return static_cast<std::uint32_t>(z ^ (z >> 31));
}

std::string exceedsMessage(int r, std::int64_t booked, std::int64_t cap, TimeNs from) {
  return std::string(kResourceNames[r]) + " booked " + std::to_string(booked) + " > capacity " +
         std::to_string(cap) + " from " + formatTime(from);
}

// The usage of one host as a treap of changes (see the top of the file).
class UsageChanges {
 public:
  // Adds `d` to the change at `key` (a node whose changes all become 0 goes). It waits with
  // the other changes made since the last question until the next one (settle()).
  void add(TimeNs key, const Amounts& d) { pending_.emplace_back(key, d); }
  void clear() {
    clearTree();
    pending_.clear();
  }
  std::size_t size() const {
    settle();
    return count();
  }
  std::size_t bytes() const {
    settle();
    return nodes_.capacity() * sizeof(Node) + free_.capacity() * sizeof(std::int32_t);
  }

  UsageChanges() = default;
  // A copy has every change in its tree (settled first), so a copy that is const (a Bookings
  // snapshot) never changes.
  UsageChanges(const UsageChanges& o)
      : nodes_((o.settle(), o.nodes_)), free_(o.free_), root_(o.root_) {}
  UsageChanges& operator=(const UsageChanges& o) {
    if (this != &o) *this = UsageChanges(o);
    return *this;
  }
  UsageChanges(UsageChanges&&) noexcept = default;
  UsageChanges& operator=(UsageChanges&&) noexcept = default;

  // Usage at instant t: the sum of the changes at keys <= t.
  Amounts at(TimeNs t) const {
    settle();
    Amounts sum{};
    for (std::int32_t n = root_; n >= 0;) {
      const Node& x = nodes_[n];
      if (x.key <= t) {
        plus(sum, sumOf(x.left));
        plus(sum, x.delta);
        n = x.right;
      } else {
        n = x.left;
      }
    }
    return sum;
  }
  // Highest usage at the changes strictly inside (lo, hi), per resource; kNone where none.
  Amounts maxInside(TimeNs lo, TimeNs hi) const {
    settle();
    return maxInside(root_, lo, hi, Amounts{}, false, false);
  }
  // The first change inside (lo, hi) after which resource r's usage exceeds `cap`.
  std::optional<TimeNs> firstAbove(int r, TimeNs lo, TimeNs hi, std::int64_t cap) const {
    settle();
    return firstAbove(root_, r, lo, hi, cap, 0, false, false);
  }
  // The last change at or before t of resource r (the start of its segment holding t).
  std::optional<TimeNs> lastChangeOf(int r, TimeNs t) const {
    settle();
    return lastChange(root_, r, t);
  }
  // The first change after t at which some resource's usage falls.
  std::optional<TimeNs> firstFallAfter(TimeNs t) const {
    settle();
    return firstFall(root_, t);
  }
  // Replaces every change at or before t by one change at kFolded: their sum.
  void foldUpTo(TimeNs t) {
    settle();
    auto [upTo, after] = split(root_, t);
    const Amounts folded = sumOf(upTo);
    release(upTo);
    if (count() == 0) clearTree();  // nothing left: start the pool afresh
    root_ = after;
    if (folded != Amounts{}) root_ = insert(root_, kFolded, folded);
  }
  // f(key, delta) for each change strictly inside (lo, hi), in time order.
  template <typename F>
  void forEachInside(TimeNs lo, TimeNs hi, F&& f) const {
    settle();
    visitInside(root_, lo, hi, f);
  }
  // The changes in time order.
  std::vector<std::pair<TimeNs, Amounts>> inOrder() const {
    settle();
    std::vector<std::pair<TimeNs, Amounts>> out;
    out.reserve(size());
    visit(root_, [&](const Node& x) { out.emplace_back(x.key, x.delta); });
    return out;
  }

 private:
  struct Node {
    TimeNs key = 0;
    Amounts delta{}, sum{}, maxPrefix{};
    std::int32_t left = -1, right = -1;
    std::uint32_t priority = 0;
    std::uint8_t nonzero = 0;  // bit r: some change of resource r in the subtree
    std::uint8_t falls = 0;    // bit r: some negative change of resource r in the subtree
  };

  static void plus(Amounts& a, const Amounts& b) {
    for (int r = 0; r < kResources; ++r) a[r] += b[r];
  }
  static void maxWith(Amounts& a, const Amounts& b) {
    for (int r = 0; r < kResources; ++r) a[r] = std::max(a[r], b[r]);
  }
  Amounts sumOf(std::int32_t n) const { return n < 0 ? Amounts{} : nodes_[n].sum; }

  void pull(std::int32_t n) {
    Node& x = nodes_[n];
    const Node* l = x.left >= 0 ? &nodes_[x.left] : nullptr;
    const Node* rt = x.right >= 0 ? &nodes_[x.right] : nullptr;
    x.nonzero = 0;
    x.falls = 0;
    for (int r = 0; r < kResources; ++r) {
      const std::int64_t before = l ? l->sum[r] : 0;
      const std::int64_t mid = before + x.delta[r];
      std::int64_t best = l ? std::max(l->maxPrefix[r], mid) : mid;
      if (rt) best = std::max(best, mid + rt->maxPrefix[r]);
      x.maxPrefix[r] = best;
      x.sum[r] = mid + (rt ? rt->sum[r] : 0);
      if (x.delta[r] != 0) x.nonzero |= 1u << r;
      if (x.delta[r] < 0) x.falls |= 1u << r;
    }
    for (const Node* c : {l, rt}) {
      if (!c) continue;
      x.nonzero |= c->nonzero;
      x.falls |= c->falls;
    }
  }

  std::int32_t newNode(TimeNs key, const Amounts& d) {
    std::int32_t n;
    if (!free_.empty()) {
      n = free_.back();
      free_.pop_back();
      nodes_[n] = Node{};
    } else {
      n = static_cast<std::int32_t>(nodes_.size());
      nodes_.emplace_back();
    }
    nodes_[n].key = key;
    nodes_[n].delta = d;
    nodes_[n].priority = priorityOf(key);
    pull(n);
    return n;
  }

  void release(std::int32_t n) {
    if (n < 0) return;
    release(nodes_[n].left);
    release(nodes_[n].right);
    free_.push_back(n);
  }

  std::int32_t rotateRight(std::int32_t n) {
    const std::int32_t l = nodes_[n].left;
    nodes_[n].left = nodes_[l].right;
    nodes_[l].right = n;
    pull(n);
    pull(l);
    return l;
  }
  std::int32_t rotateLeft(std::int32_t n) {
    const std::int32_t r = nodes_[n].right;
    nodes_[n].right = nodes_[r].left;
    nodes_[r].left = n;
    pull(n);
    pull(r);
    return r;
  }

  std::int32_t merge(std::int32_t a, std::int32_t b) {  // every key of a < every key of b
    if (a < 0) return b;
    if (b < 0) return a;
    if (nodes_[a].priority > nodes_[b].priority) {
      const std::int32_t m = merge(nodes_[a].right, b);
      nodes_[a].right = m;
      pull(a);
      return a;
    }
    const std::int32_t m = merge(a, nodes_[b].left);
    nodes_[b].left = m;
    pull(b);
    return b;
  }

  // (keys <= t, keys > t)
  std::pair<std::int32_t, std::int32_t> split(std::int32_t n, TimeNs t) {
    if (n < 0) return {-1, -1};
    if (nodes_[n].key <= t) {
      auto [l, r] = split(nodes_[n].right, t);
      nodes_[n].right = l;
      pull(n);
      return {n, r};
    }
    auto [l, r] = split(nodes_[n].left, t);
    nodes_[n].left = r;
    pull(n);
    return {l, n};
  }

  using Change = std::pair<TimeNs, Amounts>;

  std::size_t count() const { return nodes_.size() - free_.size(); }  // nodes in the tree
  void clearTree() {
    nodes_.clear();
    free_.clear();
    root_ = -1;
  }

  // Puts the waiting changes in the tree (see the top of the file). Logically const: the
  // calendar answers the same before and after.
  void settle() const { const_cast<UsageChanges*>(this)->settlePending(); }
  void settlePending() {
    if (pending_.empty()) return;
    std::sort(pending_.begin(), pending_.end(),
              [](const Change& a, const Change& b) { return a.first < b.first; });
    std::size_t out = 0;  // equal instants summed in place, zero sums dropped
    for (std::size_t i = 0; i < pending_.size();) {
      Change c = pending_[i];
      for (++i; i < pending_.size() && pending_[i].first == c.first; ++i) {
        plus(c.second, pending_[i].second);
      }
      if (c.second != Amounts{}) pending_[out++] = c;
    }
    pending_.resize(out);
    const std::size_t n = count();
    // A few changes into a big tree: one insert each, O(k log n). Else one rebuild, O(n + k).
    if (pending_.size() * 8 < n) {
      for (const Change& c : pending_) root_ = insert(root_, c.first, c.second);
    } else {
      std::vector<Change> merged;
      merged.reserve(n + pending_.size());
      std::size_t j = 0;
      auto take = [&](const Change& c) {  // appends c, summing into an equal instant
        if (!merged.empty() && merged.back().first == c.first) {
          plus(merged.back().second, c.second);
          if (merged.back().second == Amounts{}) merged.pop_back();
        } else {
          merged.push_back(c);
        }
      };
      visit(root_, [&](const Node& x) {
        while (j < pending_.size() && pending_[j].first < x.key) take(pending_[j++]);
        take({x.key, x.delta});
      });
      while (j < pending_.size()) take(pending_[j++]);
      build(merged);
    }
    // Freed, not kept: a rebuild's burst of hundreds, kept on each of 10,000 hosts, would
    // cost more memory than their trees.
    std::vector<Change>().swap(pending_);
  }

  // The treap of `sorted` (strictly increasing keys, no zero changes), replacing the tree:
  // nodes in key order, each parent of higher priority than its children (ties go to the
  // earlier key), linked with a stack of the right spine, then summed bottom-up.
  void build(const std::vector<Change>& sorted) {
    clearTree();
    nodes_.resize(sorted.size());
    std::vector<std::int32_t> spine;
    for (std::size_t i = 0; i < sorted.size(); ++i) {
      const auto n = static_cast<std::int32_t>(i);
      Node& x = nodes_[i];
      x.key = sorted[i].first;
      x.delta = sorted[i].second;
      x.priority = priorityOf(x.key);
      std::int32_t last = -1;
      while (!spine.empty() && nodes_[spine.back()].priority < x.priority) {
        last = spine.back();
        spine.pop_back();
      }
      x.left = last;
      if (!spine.empty()) nodes_[spine.back()].right = n;
      spine.push_back(n);
    }
    if (spine.empty()) return;
    root_ = spine.front();
    pullAll(root_);
  }
  void pullAll(std::int32_t n) {
    if (n < 0) return;
    pullAll(nodes_[n].left);
    pullAll(nodes_[n].right);
    pull(n);
  }

  template <typename F>
  void visit(std::int32_t n, F&& f) const {
    if (n < 0) return;
    visit(nodes_[n].left, f);
    f(nodes_[n]);
    visit(nodes_[n].right, f);
  }

  template <typename F>
  void visitInside(std::int32_t n, TimeNs lo, TimeNs hi, F& f) const {
    if (n < 0) return;
    const Node& x = nodes_[n];
    if (x.key > lo) visitInside(x.left, lo, hi, f);
    if (x.key > lo && x.key < hi) f(x.key, x.delta);
    if (x.key < hi) visitInside(x.right, lo, hi, f);
  }

  std::int32_t insert(std::int32_t n, TimeNs key, const Amounts& d) {
    if (n < 0) return newNode(key, d);
    if (key == nodes_[n].key) {
      plus(nodes_[n].delta, d);
      if (nodes_[n].delta == Amounts{}) {
        const std::int32_t m = merge(nodes_[n].left, nodes_[n].right);
        free_.push_back(n);
        if (count() == 0) clearTree();
        return m;
      }
      pull(n);
      return n;
    }
    if (key < nodes_[n].key) {
      const std::int32_t l = insert(nodes_[n].left, key, d);
      nodes_[n].left = l;
      if (l >= 0 && nodes_[l].priority > nodes_[n].priority) return rotateRight(n);
    } else {
      const std::int32_t r = insert(nodes_[n].right, key, d);
      nodes_[n].right = r;
      if (r >= 0 && nodes_[r].priority > nodes_[n].priority) return rotateLeft(n);
    }
    pull(n);
    return n;
  }

  // Over the keys k of n's subtree with lo < k < hi: base + the subtree's changes up to k.
  // loOk / hiOk: every key of the subtree is known to satisfy that bound.
  Amounts maxInside(std::int32_t n, TimeNs lo, TimeNs hi, Amounts base, bool loOk,
                    bool hiOk) const {
    if (n < 0) return kNoneAmounts;
    const Node& x = nodes_[n];
    if (loOk && hiOk) {
      plus(base, x.maxPrefix);
      return base;
    }
    Amounts best = kNoneAmounts;
    if (loOk || x.key > lo)
      maxWith(best, maxInside(x.left, lo, hi, base, loOk, hiOk || x.key <= hi));
    plus(base, sumOf(x.left));
    plus(base, x.delta);
    if (x.key > lo && x.key < hi) maxWith(best, base);
    if (hiOk || x.key < hi)
      maxWith(best, maxInside(x.right, lo, hi, base, loOk || x.key >= lo, hiOk));
    return best;
  }

  std::optional<TimeNs> firstAbove(std::int32_t n, int r, TimeNs lo, TimeNs hi, std::int64_t cap,
                                   std::int64_t base, bool loOk, bool hiOk) const {
    if (n < 0) return std::nullopt;
    const Node& x = nodes_[n];
    if (loOk && hiOk && base + x.maxPrefix[r] <= cap) return std::nullopt;
    if (loOk || x.key > lo) {
      if (auto k = firstAbove(x.left, r, lo, hi, cap, base, loOk, hiOk || x.key <= hi)) return k;
    }
    base += sumOf(x.left)[r] + x.delta[r];
    if (x.key > lo && x.key < hi && base > cap) return x.key;
    if (hiOk || x.key < hi) {
      return firstAbove(x.right, r, lo, hi, cap, base, loOk || x.key >= lo, hiOk);
    }
    return std::nullopt;
  }

  std::optional<TimeNs> lastChange(std::int32_t n, int r, TimeNs t) const {
    if (n < 0 || !(nodes_[n].nonzero & (1u << r))) return std::nullopt;
    const Node& x = nodes_[n];
    if (x.key > t) return lastChange(x.left, r, t);
    if (auto k = lastChange(x.right, r, t)) return k;
    if (x.delta[r] != 0) return x.key;
    return lastChange(x.left, r, t);
  }

  std::optional<TimeNs> firstFall(std::int32_t n, TimeNs t) const {
    if (n < 0 || !nodes_[n].falls) return std::nullopt;
    const Node& x = nodes_[n];
    if (x.key <= t) return firstFall(x.right, t);
    if (auto k = firstFall(x.left, t)) return k;
    for (int r = 0; r < kResources; ++r) {
      if (x.delta[r] < 0) return x.key;
    }
    return firstFall(x.right, t);
  }

  std::vector<Node> nodes_;
  std::vector<std::int32_t> free_;
  std::int32_t root_ = -1;
  std::vector<Change> pending_;  // changes not yet in the tree, in the order they came
};

// Upper bound of the first segment of `map` ending after `now`.
TimeNs firstEndAfter(const OwnerMap& map, TimeNs now) {
  auto it = map.lower_bound(Interval(now, now + 1));  // first segment with upper > now
  return it == map.end() ? kTimeInfinity : it->first.upper();
}

}  // namespace

struct CapacityCalendar::HostCalendar {
  Usage capacity;
  UsageChanges usage;
  OwnerMap exclusive;
  // This host's changes at or before it are folded (forgetBefore); kFolded: none yet.
  TimeNs foldedUpTo = kFolded;
};

class CapacityCalendar::Bookings {
 public:
  explicit Bookings(const HostCalendar& h) : copy(h) {}
  HostCalendar copy;
};

CapacityCalendar::CapacityCalendar() = default;
CapacityCalendar::~CapacityCalendar() = default;
CapacityCalendar::CapacityCalendar(CapacityCalendar&&) noexcept = default;
CapacityCalendar& CapacityCalendar::operator=(CapacityCalendar&&) noexcept = default;

CapacityCalendar::HostCalendar& CapacityCalendar::at(const std::string& host) {
  auto& slot = hosts_[host];
  if (!slot) slot = std::make_unique<HostCalendar>();
  HostCalendar& h = *slot;
  if (horizon_ > h.foldedUpTo) {  // forgetBefore() since this host last changed
    h.usage.foldUpTo(horizon_);
    const std::set<std::string> owners = [&] {
      auto it = h.exclusive.find(horizon_);
      return it == h.exclusive.end() ? std::set<std::string>{} : it->second;
    }();
    h.exclusive.erase(Interval(kFolded, horizon_));
    if (!owners.empty()) h.exclusive += std::make_pair(Interval(kFolded, horizon_), owners);
    h.foldedUpTo = horizon_;
  }
  return h;
}

const CapacityCalendar::HostCalendar* CapacityCalendar::find(const std::string& host) const {
  auto it = hosts_.find(host);
  return it == hosts_.end() ? nullptr : it->second.get();
}

void CapacityCalendar::setCapacity(const std::string& host, const Usage& capacity) {
  at(host).capacity = capacity;
}

Usage CapacityCalendar::capacity(const std::string& host) const {
  const HostCalendar* h = find(host);
  return h ? h->capacity : Usage{};
}

void CapacityCalendar::clearHost(const std::string& host) {
  HostCalendar& h = at(host);
  h.usage.clear();
  h.exclusive.clear();
}

bool CapacityCalendar::clampToHorizon(TimeNs& from, TimeNs to) const {
  if (horizon_ == kFolded) return true;
  if (to <= horizon_) return false;      // wholly forgotten: read as at the horizon
  if (from <= horizon_) from = kFolded;  // from the horizon back, as at the horizon
  return true;
}

void CapacityCalendar::book(const std::string& host, TimeNs from, TimeNs to, const Usage& u) {
  if (from >= to || !clampToHorizon(from, to)) return;
  const Amounts d = amountsOf(u);
  if (d == Amounts{}) return;
  UsageChanges& changes = at(host).usage;
  changes.add(from, d);
  changes.add(to, {-d[0], -d[1], -d[2]});
}

void CapacityCalendar::unbook(const std::string& host, TimeNs from, TimeNs to, const Usage& u) {
  book(host, from, to, {-u.cpuCores, -u.memoryBytes, -u.nicBytesPerSec});
}

void CapacityCalendar::bookExclusive(const std::string& host, TimeNs from, TimeNs to,
                                     const std::string& owner) {
  if (from >= to || !clampToHorizon(from, to)) return;
  at(host).exclusive += std::make_pair(Interval(from, to), std::set<std::string>{owner});
}

std::pair<TimeNs, TimeNs> CapacityCalendar::queried(TimeNs from, TimeNs to) const {
  if (to <= horizon_) return {horizon_, horizon_ + 1};  // every instant reads as the horizon
  return {std::max(from, horizon_), to};
}

Usage CapacityCalendar::peak(const std::string& host, TimeNs from, TimeNs to) const {
  const HostCalendar* h = find(host);
  if (!h || from >= to) return {};
  std::tie(from, to) = queried(from, to);
  Amounts best = h->usage.at(from);
  const Amounts inside = h->usage.maxInside(from, to);
  for (int r = 0; r < kResources; ++r) best[r] = std::max({best[r], inside[r], std::int64_t{0}});
  return usageOf(best);
}

std::vector<std::pair<TimeNs, Usage>> CapacityCalendar::usageSteps(const std::string& host,
                                                                   TimeNs from, TimeNs to) const {
  std::vector<std::pair<TimeNs, Usage>> out;
  if (from >= to) return out;
  std::tie(from, to) = queried(from, to);
  const HostCalendar* h = find(host);
  if (!h) {
    out.emplace_back(from, Usage{});
    return out;
  }
  Amounts sum = h->usage.at(from);
  out.emplace_back(from, usageOf(sum));
  h->usage.forEachInside(from, to, [&](TimeNs key, const Amounts& d) {
    for (int r = 0; r < kResources; ++r) sum[r] += d[r];
    out.emplace_back(key, usageOf(sum));
  });
  return out;
}

Usage CapacityCalendar::free(const std::string& host, TimeNs from, TimeNs to) const {
  Usage cap = capacity(host);
  Usage p = peak(host, from, to);
  return {cap.cpuCores - p.cpuCores, cap.memoryBytes - p.memoryBytes,
          cap.nicBytesPerSec - p.nicBytesPerSec};
}

std::optional<std::string> CapacityCalendar::exclusiveOwner(const std::string& host, TimeNs from,
                                                            TimeNs to,
                                                            const std::string& except) const {
  const HostCalendar* h = find(host);
  if (!h || from >= to) return std::nullopt;
  std::tie(from, to) = queried(from, to);
  auto range = h->exclusive.equal_range(Interval(from, to));
  for (auto it = range.first; it != range.second; ++it) {
    for (const auto& owner : it->second) {
      if (owner != except) return owner;
    }
  }
  return std::nullopt;
}

bool CapacityCalendar::overbooked(const std::string& host, std::string* why) const {
  return overbookedWithin(host, kTimeMinusInfinity, kTimeInfinity, why);
}

std::shared_ptr<const CapacityCalendar::Bookings> CapacityCalendar::copyOf(
    const std::string& host) const {
  const HostCalendar* h = find(host);
  return std::make_shared<const Bookings>(h ? *h : HostCalendar{});
}

bool CapacityCalendar::worseThan(const std::string& host, const Bookings& before,
                                 std::string* why) const {
  const HostCalendar* h = find(host);
  if (!h) return false;
  const HostCalendar& b = before.copy;
  // Both step functions walked together from the horizon on: at each change, is the host over
  // capacity where it now books more than before? Per resource in the order of the checks.
  const auto after = h->usage.inOrder();
  const auto was = b.usage.inOrder();
  const Amounts cap = amountsOf(h->capacity);
  for (int r = 0; r < kResources; ++r) {
    std::int64_t now = 0, then = 0;
    TimeNs segmentStart = kFolded;  // of `after`'s segment of resource r
    std::size_t i = 0, j = 0;
    auto violated = [&] {
      if (now - then <= 0 || now <= cap[r]) return false;
      if (why) *why = exceedsMessage(r, now, cap[r], std::max(segmentStart, horizon_));
      return true;
    };
    // Up to the horizon everything reads as at the horizon.
    while (i < after.size() && after[i].first <= horizon_) {
      if (after[i].second[r] != 0) segmentStart = after[i].first;
      now += after[i++].second[r];
    }
    while (j < was.size() && was[j].first <= horizon_) then += was[j++].second[r];
    if (violated()) return true;
    while (i < after.size() || j < was.size()) {
      const TimeNs t = std::min(i < after.size() ? after[i].first : kTimeInfinity,
                                j < was.size() ? was[j].first : kTimeInfinity);
      if (t == kTimeInfinity) break;  // no instant at or after infinity is ever booked
      while (i < after.size() && after[i].first == t) {
        if (after[i].second[r] != 0) segmentStart = t;
        now += after[i++].second[r];
      }
      while (j < was.size() && was[j].first == t) then += was[j++].second[r];
      if (violated()) return true;
    }
  }
  auto [from, to] = queried(kTimeMinusInfinity, kTimeInfinity);
  auto range = h->exclusive.equal_range(Interval(from, to));
  for (auto seg = range.first; seg != range.second; ++seg) {
    const auto& [iv, owners] = *seg;
    if (owners.size() < 2) continue;
    std::set<std::string> had;
    auto prior = b.exclusive.equal_range(iv & Interval(from, to));
    for (auto it = prior.first; it != prior.second; ++it) {
      had.insert(it->second.begin(), it->second.end());
    }
    for (const auto& o : owners) {
      if (had.count(o)) continue;
      if (why) {
        *why = "exclusive window of " + o + " overlaps another from " +
               formatTime(std::max(iv.lower(), horizon_));
      }
      return true;
    }
  }
  return false;
}

TimeNs CapacityCalendar::stableUntil(const std::string& host, TimeNs now) const {
  const HostCalendar* h = find(host);
  if (!h) return kTimeInfinity;
  now = std::max(now, horizon_);
  // "Free from t on" is capacity minus the highest usage after t: it can only change where
  // usage falls (a rise after t stays ahead of t). Exclusive owners from t on change where a
  // window ends.
  const TimeNs fall = h->usage.firstFallAfter(now).value_or(kTimeInfinity);
  return std::min(fall, firstEndAfter(h->exclusive, now));
}

bool CapacityCalendar::overbookedWithin(const std::string& host, TimeNs from, TimeNs to,
                                        std::string* why) const {
  const HostCalendar* h = find(host);
  if (!h || from >= to) return false;
  std::tie(from, to) = queried(from, to);
  const Amounts atFrom = h->usage.at(from);
  const Amounts inside = h->usage.maxInside(from, to);
  for (int r = 0; r < kResources; ++r) {
    const std::int64_t cap = capOf(h->capacity, r);
    if (atFrom[r] <= cap && inside[r] <= cap) continue;
    if (why) {
      // The first segment over capacity, as the message has always named it: its value and
      // where it starts (before `from` when it was already running).
      if (atFrom[r] > cap) {
        const TimeNs start = h->usage.lastChangeOf(r, from).value_or(from);
        *why = exceedsMessage(r, atFrom[r], cap, std::max(start, horizon_));
      } else {
        const TimeNs start = *h->usage.firstAbove(r, from, to, cap);
        *why = exceedsMessage(r, h->usage.at(start)[r], cap, start);
      }
    }
    return true;
  }
  auto range = h->exclusive.equal_range(Interval(from, to));
  for (auto it = range.first; it != range.second; ++it) {
    const auto& [iv, owners] = *it;
    if (owners.size() > 1) {
      if (why) *why = "two exclusive owners from " + formatTime(std::max(iv.lower(), horizon_));
      return true;
    }
  }
  return false;
}

void CapacityCalendar::forgetBefore(TimeNs t) { horizon_ = std::max(horizon_, t); }

TimeNs CapacityCalendar::forgottenBefore() const {
  return horizon_ == kFolded ? kTimeMinusInfinity : horizon_;
}

CapacityCalendar::Footprint CapacityCalendar::footprint() const {
  Footprint f;
  for (const auto& [name, h] : hosts_) {
    f.changes += h->usage.size();
    f.usageBytes += h->usage.bytes();
    f.exclusiveSegments += h->exclusive.iterative_size();
  }
  return f;
}

std::vector<std::string> CapacityCalendar::hosts() const {
  std::vector<std::string> out;
  for (const auto& [name, h] : hosts_) out.push_back(name);
  return out;
}

}  // namespace vrm::manager
