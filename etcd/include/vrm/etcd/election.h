// Leader election of vrmd's replicas on etcd: each candidate holds a lease it keeps alive and
// campaigns under one election name; the leader is the candidate whose key was created first.
//
// Fencing. Leading is only ever a belief; what makes it safe is the Fence: the leader key and
// its create revision. Every transaction the leader commits carries the compare
// "createRevision(leaderKey) == revision" (Fence::attachTo, commitFenced), which holds only
// while that key exists, i.e. while this candidate leads. A deposed leader (lease expired,
// resigned, paused past its lease, partitioned away) can therefore never commit, whatever it
// believes; its commits fail with kDeposed.
//
// Stepping down. Besides the store, a leader acts on the world (vrmd sends agent commands), and
// those are not fenced by etcd. So leadership is also bounded in time, locally: fence() returns
// the fence only until the lease's deadline as this process can prove it, the send time of the
// last successful renewal + the granted TTL - `safetyMargin` (etcd counts the TTL from when it
// received the renewal, later). When renewals fail, fence() goes empty at that deadline without
// waiting for the election thread, so a process that wakes from SIGSTOP past its lease sees
// itself deposed before it can act; the thread then reports kSteppedDown and campaigns again
// with a new lease.
//
// Threading. The election runs on its own thread with its own Client (a campaign waits and
// renewals are periodic; vrmd's event loop must not). fence(), isLeader(), leaderValue() may be
// called from any thread. The listener is called on the election thread, in order, never after
// stop() returns; it must not block (vrmd's forwards each event to its loop over inproc://).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "vrm/etcd/client.h"
#include "vrm/etcd/error.h"
#include "vrm/etcd/types.h"

namespace vrm::etcd {

struct ElectionOptions {
  // The election's name, a key prefix ("/vrm/leader"): candidates' keys are NAME/LEASE-ID.
  std::string name;
  // This candidate's identity, the leader key's value while it leads (vrmd: its client URL,
  // which followers redirect to).
  std::string value;
  // The lease TTL: how long a silent leader keeps leadership. Default 3 s (etcd raises TTLs
  // below its minimum, 1.5 x its election timeout; the granted TTL is what counts).
  std::chrono::seconds leaseTtl{3};
  // Time between renewals. Default (0): TTL / 3.
  std::chrono::milliseconds renewInterval{0};
  // Leadership ends locally this long before the lease can expire at etcd. Default (0):
  // TTL / 10, at least 100 ms.
  std::chrono::milliseconds safetyMargin{0};
  // Wait after a failed grant or campaign before the next try. Default 500 ms.
  std::chrono::milliseconds retryDelay{500};
};

// The proof of leadership a leader attaches to each transaction it commits.
struct Fence {
  std::string leaderKey;
  std::int64_t revision = 0;  // the leader key's create revision: this leader's term
  std::int64_t leaseId = 0;

  Compare compare() const;
  // Appends compare() to the transaction's compares.
  void attachTo(TxnRequest& txn) const;
};

struct LeadershipEvent {
  enum class Kind {
    kElected,        // this candidate leads: `fence`
    kSteppedDown,    // it no longer does: `reason`
    kLeaderChanged,  // another candidate leads (`leaderValue`), or none (empty)
  };
  Kind kind = Kind::kLeaderChanged;
  std::optional<Fence> fence;
  std::string leaderValue;
  std::string reason;
};

class Election {
 public:
  using Listener = std::function<void(const LeadershipEvent&)>;

  // Checks the options (kInvalidArgument) and starts campaigning on a new thread. The client's
  // timeouts are lowered to fit the renewal interval (a renewal must not outlast it).
  static Result<std::unique_ptr<Election>> start(ClientOptions client, ElectionOptions options,
                                                 Listener listener);
  ~Election();  // stop()
  Election(const Election&) = delete;
  Election& operator=(const Election&) = delete;

  // Ends the candidacy: a leader revokes its lease (its key goes, so the next candidate takes
  // over at once instead of after the TTL), a follower withdraws. Returns once the thread has
  // ended (within about one renewal interval plus one call). Idempotent.
  void stop();

  // The fence while this candidate leads and its lease is provably alive; nullopt otherwise.
  std::optional<Fence> fence() const;
  bool isLeader() const { return fence().has_value(); }
  // The leader's value as last seen: this candidate's own while it leads; empty if unknown.
  std::string leaderValue() const;

  // Commits `txn` on `client` with `fence` attached: kDeposed when the fence no longer
  // holds (this leader was deposed; nothing was applied), else as Client::commitIf (the
  // transaction's own compares must hold too).
  static Result<TxnResponse> commitFenced(Client& client, const Fence& fence, TxnRequest txn);

 private:
  using SteadyClock = std::chrono::steady_clock;
  Election(std::unique_ptr<Client> client, ElectionOptions options, Listener listener);
  void run();
  // One term of candidacy with one lease: campaign, lead while the lease lives.
  void candidacy();
  // Renews the lease once and moves leaseDeadline_ on; the Error when it failed
  // (kLeaseNotFound: it is gone).
  Result<void> renew(std::int64_t lease);
  void lead(const LeaderKey& key);
  void learnLeader();
  void setLeader(std::optional<Fence> fence);
  void emit(const LeadershipEvent& event);
  // Waits until `until` or stop(); false when stopping.
  bool pause(SteadyClock::time_point until);
  bool stopping() const;

  std::unique_ptr<Client> client_;  // used by the election thread only
  ElectionOptions options_;
  Listener listener_;
  std::chrono::milliseconds ttl_{0};         // as granted
  SteadyClock::time_point leaseDeadline_{};  // last successful renewal's send time + TTL

  mutable std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::optional<Fence> fence_;
  SteadyClock::time_point leadUntil_{};  // fence_ is valid before this
  std::string leaderValue_;
  std::thread thread_;
};

}  // namespace vrm::etcd
