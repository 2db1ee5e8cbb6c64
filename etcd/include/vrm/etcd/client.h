// A client of etcd's v3 API through its JSON gateway (HTTP/1.1 POSTs to /v3/...), for the
// replicated store and the leader election of vrmd.
//
// Threading and blocking. A Client, and the streams it opens (Watcher, ObserveStream,
// CampaignCall), have one owner thread at a time: only it calls them (it may hand them all over
// to another thread, as Election does), and they must be destroyed before the Client. Every call
// blocks that thread: a unary call for at most `callTimeout`, a stream's next()/wait() until the
// deadline it is given. All I/O runs on one Asio io_context owned by the Client and driven only
// inside those calls, so one thread can hold several streams and service them in turn (data that
// arrives for one stream while the thread waits on another is buffered). The one exception is
// interrupt(), which any thread may call. vrmd's event loop may use a Client for its commits
// (short, bounded calls, like SQLite's); keepalives, campaigns and watches, which wait, belong on a
// helper thread of their own that reports to the loop over inproc:// (see election.h).
//
// Endpoints and failover. The client talks to one member at a time and moves to the next when
// that member cannot be reached, does not answer within `attemptTimeout`, or says it cannot
// serve (no raft leader). A read moves on after any such failure. A write moves on only when it
// certainly was not applied (never sent, or refused before proposing); one that was sent and
// not answered fails with kTimeout, because it may have been applied (read back to know).
// Every request carries gRPC metadata "hasleader", so a member cut off from its cluster refuses
// at once instead of waiting.
//
// Errors. Every failure is an Error with a code (error.h); an answer that does not follow the
// API is kBadResponse, never a crash. The size of puts and txns is checked against
// `maxRequestBytes` before sending; answers are limited to `maxAnswerBytes`.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "vrm/etcd/error.h"
#include "vrm/etcd/types.h"

namespace vrm::etcd {

namespace detail {
class Loop;
class UnaryConnection;
class StreamConnection;
}  // namespace detail

using SteadyTime = std::chrono::steady_clock::time_point;

struct ClientOptions {
  // The members' client URLs: "127.0.0.1:2379" or "http://host:2379" (no TLS). At least one.
  std::vector<std::string> endpoints;
  // How long one member has to answer one unary call before the next is tried (reads) or the
  // call fails with kTimeout (writes that were sent). Default 2 s.
  std::chrono::milliseconds attemptTimeout{2000};
  // The longest a unary call blocks, over every member it tries. Default 5 s.
  std::chrono::milliseconds callTimeout{5000};
  // Puts and txns estimated larger than this are refused before sending (kRequestTooLarge).
  // Default: etcd's --max-request-bytes default, 1.5 MiB. 0 = no check (the server's applies).
  std::size_t maxRequestBytes = 1536 * 1024;
  // Txns with more compares or ops than this (each list counted alone, as etcd does) are
  // refused before sending (kRequestTooLarge). Default: etcd's --max-txn-ops default, 128.
  // 0 = no check.
  std::size_t maxTxnOps = 128;
  // Largest answer, or line of a stream, accepted (kBadResponse beyond). Default 64 MiB: read a
  // larger range in pages (RangeRequest::limit).
  std::size_t maxAnswerBytes = 64 * 1024 * 1024;
  // A watch that has heard nothing for this long checks that its member still serves (a
  // linearizable read there, within attemptTimeout) and moves to the next member if not: a
  // paused or cut-off member says nothing. Default 2 s.
  std::chrono::milliseconds watchProbeInterval{2000};
};

// "H1:2379,H2:2379,H3:2379" -> the three endpoints; invalid-argument names a bad one.
Result<std::vector<std::string>> splitEndpoints(const std::string& list);

class Client;

// A campaign in progress (Client::startCampaign): the candidate's key is queued under the
// election; the call completes when every earlier key is gone.
class CampaignCall {
 public:
  CampaignCall(CampaignCall&&) noexcept;
  CampaignCall& operator=(CampaignCall&&) noexcept;
  ~CampaignCall();  // cancel()

  // Waits until elected (the leader key), the deadline (nullopt: still waiting; call again), or
  // a failure (kLeaseNotFound: the lease expired; kUnavailable: the member was lost, start
  // again with the same lease to keep the queued key's place).
  Result<std::optional<LeaderKey>> wait(SteadyTime deadline);
  // Abandons the campaign: the connection closes and etcd withdraws the queued key. Idempotent.
  void cancel();

 private:
  friend class Client;
  CampaignCall(Client* client, std::unique_ptr<detail::StreamConnection> call);
  Client* client_;
  std::unique_ptr<detail::StreamConnection> call_;
  std::optional<LeaderKey> elected_;
};

// The leader of an election and each change of it (/v3/election/observe), on one member.
class ObserveStream {
 public:
  ObserveStream(ObserveStream&&) noexcept;
  ObserveStream& operator=(ObserveStream&&) noexcept;
  ~ObserveStream();

  // The next leader (its key and proclaimed value), nullopt at the deadline, or an Error when
  // the stream broke (open another: the first answer is the current leader).
  Result<std::optional<Leader>> next(SteadyTime deadline);

 private:
  friend class Client;
  ObserveStream(Client* client, std::unique_ptr<detail::StreamConnection> stream);
  Client* client_;
  std::unique_ptr<detail::StreamConnection> stream_;
};

// A watch that survives the loss of members: when its stream breaks or its member stops
// answering, it opens the watch again on the next member from the revision after the last event
// it delivered, so no event is lost or repeated.
class Watcher {
 public:
  Watcher(Watcher&&) noexcept;
  Watcher& operator=(Watcher&&) noexcept;
  ~Watcher();

  // The next events, nullopt at the deadline (nothing happened, or no member could be reached
  // yet: it keeps trying on the next call), or an Error it cannot get over: kCompacted (the
  // revision to resume from is gone: read the state again and start a new watch), kCancelled,
  // kBadResponse.
  Result<std::optional<WatchBatch>> next(SteadyTime deadline);
  // The revision the watch resumes from if its stream breaks now.
  std::int64_t nextRevision() const { return request_.startRevision; }
  // The member its stream is on now ("127.0.0.1:2379"), empty when none.
  std::string endpoint() const;
  // How many times the watch was opened again on another member (tests, logs).
  int reconnects() const { return reconnects_; }

 private:
  friend class Client;
  Watcher(Client* client, WatchRequest request);
  Result<void> open(SteadyTime deadline);
  void drop();
  Client* client_;
  WatchRequest request_;
  std::unique_ptr<detail::StreamConnection> stream_;
  std::size_t memberIndex_ = 0;
  SteadyTime lastHeard_{};
  int reconnects_ = -1;  // the first open is not a reconnect
};

class Client {
 public:
  // Checks the options (invalid-argument) and returns a client; connects lazily.
  static Result<std::unique_ptr<Client>> create(ClientOptions options);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // --- KV (/v3/kv/...)
  Result<RangeResponse> range(const RangeRequest& request);
  Result<PutResponse> put(const PutRequest& request);
  Result<DeleteRangeResponse> deleteRange(const DeleteRangeRequest& request);
  // Compares and ops as one atomic revision. A txn whose compares fail is a success with
  // succeeded == false; commitIf() turns that into kCompareFailed.
  Result<TxnResponse> txn(const TxnRequest& request);
  // txn() that requires the compares to hold: kCompareFailed (nothing applied) otherwise.
  Result<TxnResponse> commitIf(const TxnRequest& request);
  // Drops history before `revision` (reads and watches of older revisions get kCompacted).
  // `physical`: return only once the backend has really freed the space.
  Result<void> compact(std::int64_t revision, bool physical = false);

  // --- Leases (/v3/lease/...)
  // A lease of `ttlSeconds` (etcd raises a TTL below its minimum); `id` 0 lets etcd choose.
  Result<LeaseGrant> leaseGrant(std::int64_t ttlSeconds, std::int64_t id = 0);
  // One renewal: kLeaseNotFound when the lease has already expired.
  Result<LeaseKeepAlive> leaseKeepAlive(std::int64_t id);
  // Ends the lease now and deletes its keys.
  Result<void> leaseRevoke(std::int64_t id);
  Result<LeaseTimeToLive> leaseTimeToLive(std::int64_t id);

  // --- Elections (/v3/election/...)
  // Queues a campaign for `name` under `lease` with `value` (returns once the request is sent,
  // or kUnavailable when no member takes it); CampaignCall::wait() learns the outcome.
  Result<CampaignCall> startCampaign(const std::string& name, std::int64_t lease,
                                     const std::string& value);
  // Sets the leader's value; kDeposed when `leader` no longer leads.
  Result<void> proclaim(const LeaderKey& leader, const std::string& value);
  // The current leader; kNotFound when nobody leads.
  Result<Leader> leader(const std::string& name);
  // Gives up leadership (deletes the leader key; the lease stays).
  Result<void> resign(const LeaderKey& leader);
  // Follows the leader of `name` on the first member that takes the stream.
  Result<ObserveStream> observe(const std::string& name);

  // --- Watches (/v3/watch)
  // Opens lazily: the first next() connects.
  Watcher watch(WatchRequest request);

  // --- Maintenance (/v3/maintenance/...)
  std::size_t memberCount() const;
  const std::string& memberEndpoint(std::size_t index) const;
  // Status of one member (no failover: the question is about that member).
  Result<MemberStatus> memberStatus(std::size_t index);
  // The raised alarms of the cluster (NOSPACE, CORRUPT), empty when none.
  Result<std::vector<Alarm>> alarms();
  // Disarms one alarm (after compaction and defragmentation freed space).
  Result<void> disarmAlarm(const Alarm& alarm);
  // Gives the free pages of one member's backend back to the file system.
  Result<void> defragment(std::size_t index);

  // Any thread: the blocking call now running on the owner thread, and every later one, return
  // kCancelled at once. For shutting down a helper thread. Cannot be undone.
  void interrupt();
  bool interrupted() const { return interrupted_.load(); }

 private:
  friend class CampaignCall;
  friend class ObserveStream;
  friend class Watcher;
  enum class Kind { kRead, kWrite };
  explicit Client(ClientOptions options, std::vector<std::string> endpoints);

  struct Answer {
    std::string body;
    std::string where;
  };
  // POSTs `body` to `path`, failing over as the header says for `kind`.
  Result<Answer> call(const char* path, const std::string& body, Kind kind);
  // One attempt at one member, no failover. An `idempotent` request (a read) lost on a kept
  // connection the member had just closed is sent again on a new one.
  Result<Answer> callMember(std::size_t index, const char* path, const std::string& body,
                            SteadyTime deadline, bool idempotent, bool* sent);
  // Opens a stream on the first member that takes it, from `first` on; sets *index to it.
  Result<std::unique_ptr<detail::StreamConnection>> openStream(const char* path,
                                                               const std::string& body,
                                                               std::size_t first,
                                                               std::size_t* index,
                                                               SteadyTime deadline);
  // Ok for a success answer that carries only a header (revoke, proclaim, ...).
  static Result<void> headerOnly(const Result<Answer>& answer);
  Result<void> checkSize(std::size_t bytes) const;
  Error cancelled() const;

  ClientOptions options_;
  std::vector<std::string> endpoints_;
  std::unique_ptr<detail::Loop> loop_;
  std::vector<std::unique_ptr<detail::UnaryConnection>> connections_;  // one per member
  std::size_t current_ = 0;  // the member unary calls go to first
  std::atomic<bool> interrupted_{false};
};

}  // namespace vrm::etcd
