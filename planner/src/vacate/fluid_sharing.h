// How concurrent moves share NICs and links (planner/src only): a fluid model.
//
// The moves of one batch start together. A move in a fixed segment progresses in time alone;
// moves in a network segment share their resources (see cluster.h) by max-min fairness
// (progressive filling), recomputed whenever a move enters or leaves a network segment. A flow
// with no resources (a suspension kept in place) runs at an infinite rate.
// Not thread-safe: one FairShare per planning call.
#pragma once

#include <cstddef>
#include <vector>

#include "vacate/moves.h"

namespace vrm::planner::vacate {

// One move in the fluid simulation. `eval` and `resources` point into the caller's moves and
// must outlive the flow; the other fields are the simulation's state and results.
struct Flow {
  const MoveEval* eval = nullptr;
  const std::vector<int>* resources = nullptr;
  std::size_t segment = 0;
  double remaining = 0;
  double tolerance = 0;
  double rate = 0;        // bytes/s while on the network
  double end = 0;         // seconds, when the move ended
  double downStart = -1;  // seconds, when the VM stopped (-1: it did not)
  double downEnd = -1;    // seconds, when it ran again (-1: it did not)
  bool done = false;
};

class FairShare {
 public:
  // `capacity` (bytes/s per resource) must outlive this object.
  explicit FairShare(const std::vector<double>& capacity);

  // Max-min fair rates (progressive filling) for flows[i] with active[i] set; others get 0.
  void rates(std::vector<Flow>& flows, const std::vector<char>& active);

 private:
  const std::vector<double>& capacity_;
  // Scratch kept between calls so that each call allocates nothing.
  std::vector<double> left_;
  std::vector<int> users_;
  std::vector<std::vector<int>> flowsOn_;
  std::vector<int> touched_;
  std::vector<int> live_;
  std::vector<char> frozen_;
};

// Runs one batch from t0 (seconds) and returns when its last move ends. Each flow's eval and
// resources must be set; its end and down times are set.
double simulateBatch(std::vector<Flow>& flows, double t0, FairShare& share);

}  // namespace vrm::planner::vacate
