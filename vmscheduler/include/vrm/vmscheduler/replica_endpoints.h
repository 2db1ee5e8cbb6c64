// Which of vrmd's replicas an agent talks to (README: High availability). An agent is given
// every replica's agent endpoint ("tcp://a:5556,tcp://b:5556"); only the leader registers it.
// A standby answers "not the leader" (ManagerMessage.notLeader) and a dead replica does not
// complete a handshake: either way the agent moves on to the next endpoint of the list, in
// order and round again, until one registers it. This class is that order and nothing else:
// the Agent owns the sockets and the timers, and asks it where to go next and whether to pause.
//
// Pausing: when every endpoint in a row has answered "not the leader" (an election under way,
// or etcd out of the replicas' reach) the next try should wait, or the agent and the standbys
// would pass messages at network speed. A replica that could not be reached ends such a row:
// the agent already waited for it (its connect timeout), so no loop runs fast.
//
// A value type; not thread-safe (the agent's thread).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace vrm::vmscheduler {

class ReplicaEndpoints {
 public:
  // "a,b,c": the endpoints in the order tried, empty elements dropped; "" gives the one
  // endpoint "" (connecting to it then says what is wrong, as for any bad endpoint).
  explicit ReplicaEndpoints(const std::string& list);

  // Why the agent leaves current().
  enum class Leaving {
    kNotLeader,    // a standby answered "not the leader"
    kUnreachable,  // no handshake within the connect timeout (dead, paused, wrong key)
  };
  struct Hop {
    std::string endpoint;  // the new current()
    // Every endpoint, the one just left included, answered "not the leader" in a row since
    // the last leader or unreachable replica: wait before trying `endpoint`.
    bool pause = false;
  };

  // Moves current() to the next endpoint (after the last comes the first again).
  Hop next(Leaving why);
  // current() registered the agent: a new row of refusals starts from here.
  void foundLeader() { refusedInARow_ = 0; }

  const std::string& current() const { return endpoints_[current_]; }
  const std::vector<std::string>& all() const { return endpoints_; }
  // More than one endpoint: the agent moves between them. With one it stays and retries.
  bool rotates() const { return endpoints_.size() > 1; }
  // "a,b": the list as given, for logs.
  std::string describe() const;

 private:
  std::vector<std::string> endpoints_;
  std::size_t current_ = 0;
  std::size_t refusedInARow_ = 0;
};

}  // namespace vrm::vmscheduler
