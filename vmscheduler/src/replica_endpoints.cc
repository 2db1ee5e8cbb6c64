#include "vrm/vmscheduler/replica_endpoints.h"

#include <algorithm>

namespace vrm::vmscheduler {

ReplicaEndpoints::ReplicaEndpoints(const std::string& list) {
  std::size_t from = 0;
  while (from <= list.size()) {
    const std::size_t comma = std::min(list.find(',', from), list.size());
    if (comma > from) endpoints_.push_back(list.substr(from, comma - from));
    from = comma + 1;
  }
  if (endpoints_.empty()) endpoints_.push_back(list);
}

ReplicaEndpoints::Hop ReplicaEndpoints::next(Leaving why) {
  refusedInARow_ = why == Leaving::kNotLeader ? refusedInARow_ + 1 : 0;
  const bool pause = refusedInARow_ >= endpoints_.size();
  if (pause) refusedInARow_ = 0;  // the paused try starts the next row
  current_ = (current_ + 1) % endpoints_.size();
  return Hop{endpoints_[current_], pause};
}

std::string ReplicaEndpoints::describe() const {
  std::string out;
  for (const std::string& e : endpoints_) out += (out.empty() ? "" : ",") + e;
  return out;
}

}  // namespace vrm::vmscheduler
