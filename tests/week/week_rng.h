// A small seeded generator for the week's cluster and workload (splitmix64, as the sim's own
// SimRandom): the same seed gives the same cluster and bookings on every platform and standard
// library, which std::*_distribution does not promise.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

namespace vrm::week {

class Rng {
 public:
  explicit Rng(std::uint64_t seed) : state_(seed) {}

  std::uint64_t next() {
    std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  // [0, 1)
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  // An integer in [lo, hi].
  std::int64_t between(std::int64_t lo, std::int64_t hi) {
    return lo + static_cast<std::int64_t>(next() % static_cast<std::uint64_t>(hi - lo + 1));
  }
  bool chance(double p) { return uniform() < p; }
  // Exponentially distributed with the given mean (inter-arrival times of a Poisson process).
  double exponential(double mean) { return -mean * std::log(1.0 - uniform()); }
  // exp(N(log median, sigma)): a log-normal draw with the given median.
  double logNormal(double median, double sigma) {
    const double u1 = 1.0 - uniform(), u2 = uniform();
    const double n = std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
    return median * std::exp(sigma * n);
  }
  // An index drawn with the given (unnormalised) weights.
  std::size_t pick(const std::vector<double>& weights) {
    double total = 0;
    for (double w : weights) total += w;
    double x = uniform() * total;
    for (std::size_t i = 0; i < weights.size(); ++i) {
      if ((x -= weights[i]) < 0) return i;
    }
    return weights.size() - 1;
  }
  // An independent generator for a sub-stream (e.g. per host), so that adding draws to one part
  // does not shift another.
  Rng fork(std::uint64_t salt) { return Rng(next() ^ (salt * 0xd1342543de82ef95ull)); }

 private:
  std::uint64_t state_;
};

}  // namespace vrm::week
