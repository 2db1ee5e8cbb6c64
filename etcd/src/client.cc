#include "vrm/etcd/client.h"

#include <algorithm>

#include "json_codec.h"
#include "transport.h"

namespace vrm::etcd {
namespace {

using detail::Attempt;
using std::chrono::steady_clock;

SteadyTime earliest(SteadyTime a, SteadyTime b) { return std::min(a, b); }

// The first non-empty line of a body (a streamed answer read as one).
std::string_view firstLine(std::string_view body) {
  while (!body.empty() && (body.front() == '\n' || body.front() == '\r')) body.remove_prefix(1);
  return body.substr(0, body.find('\n'));
}

// Whether a failed call may be tried again on another member: a read after any failure of
// that member; a write only when it certainly was not applied.
bool retryOnAnotherMember(const Error& e, bool isRead) {
  switch (e.code()) {
    case ErrorCode::kUnavailable:
      return true;
    case ErrorCode::kTimeout:
    case ErrorCode::kBadResponse:
    case ErrorCode::kServer:
      return isRead;
    default:
      return false;
  }
}

// The Error of an attempt that got no HTTP answer, or a non-200 one.
Error attemptError(const Attempt& a, const std::string& where) {
  switch (a.outcome) {
    case Attempt::Outcome::kAnswered:
      return codec::errorFromAnswer(a.status, a.body, where);
    case Attempt::Outcome::kNotSent:
      return {ErrorCode::kUnavailable, "etcd at " + where + ": " + a.detail};
    case Attempt::Outcome::kLost:
    case Attempt::Outcome::kTimedOut:
      if (!a.sent) return {ErrorCode::kUnavailable, "etcd at " + where + ": " + a.detail};
      return {ErrorCode::kTimeout, "etcd at " + where + ": " + a.detail +
                                       " after the request was sent (a write may have been "
                                       "applied)"};
    case Attempt::Outcome::kInterrupted:
      return {ErrorCode::kCancelled, "etcd client interrupted"};
    case Attempt::Outcome::kMalformed:
      break;
  }
  return {ErrorCode::kBadResponse, "etcd at " + where + " sent a malformed answer: " + a.detail};
}

}  // namespace

Result<std::vector<std::string>> splitEndpoints(const std::string& list) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= list.size()) {
    const std::size_t comma = std::min(list.find(',', start), list.size());
    std::string item = list.substr(start, comma - start);
    item.erase(0, item.find_first_not_of(' '));
    item.erase(item.find_last_not_of(' ') + 1);
    if (!detail::parseEndpoint(item)) {
      return Error(ErrorCode::kInvalidArgument,
                   "etcd endpoint \"" + item + "\" is not HOST:PORT or http://HOST:PORT");
    }
    out.push_back(item);
    start = comma + 1;
  }
  return out;
}

// --- Client

Result<std::unique_ptr<Client>> Client::create(ClientOptions options) {
  if (options.endpoints.empty()) {
    return Error(ErrorCode::kInvalidArgument, "etcd client: no endpoints");
  }
  if (options.attemptTimeout.count() <= 0 || options.callTimeout.count() <= 0 ||
      options.watchProbeInterval.count() <= 0) {
    return Error(ErrorCode::kInvalidArgument, "etcd client: timeouts must be positive");
  }
  if (options.maxAnswerBytes < 1024) {
    return Error(ErrorCode::kInvalidArgument, "etcd client: maxAnswerBytes below 1 KiB");
  }
  std::vector<std::string> texts;
  for (const std::string& url : options.endpoints) {
    const auto endpoint = detail::parseEndpoint(url);
    if (!endpoint) {
      return Error(ErrorCode::kInvalidArgument,
                   "etcd endpoint \"" + url + "\" is not HOST:PORT or http://HOST:PORT");
    }
    texts.push_back(endpoint->text);
  }
  return std::unique_ptr<Client>(new Client(std::move(options), std::move(texts)));
}

Client::Client(ClientOptions options, std::vector<std::string> endpoints)
    : options_(std::move(options)),
      endpoints_(std::move(endpoints)),
      loop_(std::make_unique<detail::Loop>()) {
  for (const std::string& url : options_.endpoints) {
    connections_.push_back(std::make_unique<detail::UnaryConnection>(
        *loop_, *detail::parseEndpoint(url), options_.maxAnswerBytes));
  }
}

Client::~Client() {
  connections_.clear();  // their sockets close before the loop goes
}

std::size_t Client::memberCount() const { return endpoints_.size(); }

const std::string& Client::memberEndpoint(std::size_t index) const { return endpoints_[index]; }

void Client::interrupt() {
  interrupted_ = true;
  loop_->wake();
}

Error Client::cancelled() const { return {ErrorCode::kCancelled, "etcd client interrupted"}; }

Result<void> Client::checkSize(std::size_t bytes) const {
  if (options_.maxRequestBytes != 0 && bytes > options_.maxRequestBytes) {
    return Error(ErrorCode::kRequestTooLarge, "etcd request of about " + std::to_string(bytes) +
                                                  " bytes is over the limit of " +
                                                  std::to_string(options_.maxRequestBytes) +
                                                  " bytes (etcd's --max-request-bytes): split it");
  }
  return {};
}

Result<Client::Answer> Client::callMember(std::size_t index, const char* path,
                                          const std::string& body, SteadyTime deadline,
                                          bool idempotent, bool* sent) {
  if (interrupted_) return cancelled();
  const Attempt a = connections_[index]->post(path, body, deadline, interrupted_, idempotent);
  *sent = a.sent;
  if (a.outcome == Attempt::Outcome::kAnswered && a.status == 200) {
    return Answer{a.body, endpoints_[index]};
  }
  return attemptError(a, endpoints_[index]);
}

Result<Client::Answer> Client::call(const char* path, const std::string& body, Kind kind) {
  if (interrupted_) return cancelled();
  const SteadyTime deadline = steady_clock::now() + options_.callTimeout;
  const std::size_t n = endpoints_.size();
  std::string failures;
  std::optional<Error> last;
  const std::size_t first = current_;
  for (std::size_t tried = 0; tried < n; ++tried) {
    const std::size_t index = (first + tried) % n;
    bool sent = false;
    auto answer = callMember(index, path, body,
                             earliest(deadline, steady_clock::now() + options_.attemptTimeout),
                             kind == Kind::kRead, &sent);
    if (answer) {
      current_ = index;
      return answer;
    }
    const Error& e = answer.error();
    if (e.code() == ErrorCode::kCancelled) return e;
    const bool memberTrouble =
        e.code() == ErrorCode::kUnavailable || e.code() == ErrorCode::kTimeout;
    if (memberTrouble) current_ = (index + 1) % n;  // the next call starts elsewhere
    if (!retryOnAnotherMember(e, kind == Kind::kRead)) return e;
    failures += (failures.empty() ? "" : "; ") + e.message();
    last = e;
    if (steady_clock::now() >= deadline) break;
  }
  if (n == 1 || last->code() != ErrorCode::kUnavailable) return *last;
  return Error(last->code(), "no etcd member could serve the request: " + failures);
}

Result<void> Client::headerOnly(const Result<Answer>& answer) {
  if (!answer) return answer.error();
  if (auto header = codec::decodeHeaderOnly(answer->body, answer->where); !header) {
    return header.error();
  }
  return {};
}

Result<RangeResponse> Client::range(const RangeRequest& request) {
  auto answer = call("/v3/kv/range", codec::encodeRange(request), Kind::kRead);
  if (!answer) return answer.error();
  return codec::decodeRange(answer->body, answer->where);
}

Result<PutResponse> Client::put(const PutRequest& request) {
  if (auto size = checkSize(codec::requestBytes(request)); !size) return size.error();
  auto answer = call("/v3/kv/put", codec::encodePut(request), Kind::kWrite);
  if (!answer) return answer.error();
  return codec::decodePut(answer->body, answer->where);
}

Result<DeleteRangeResponse> Client::deleteRange(const DeleteRangeRequest& request) {
  auto answer = call("/v3/kv/deleterange", codec::encodeDeleteRange(request), Kind::kWrite);
  if (!answer) return answer.error();
  return codec::decodeDeleteRange(answer->body, answer->where);
}

Result<TxnResponse> Client::txn(const TxnRequest& request) {
  if (auto size = checkSize(codec::requestBytes(request)); !size) return size.error();
  const std::size_t ops =
      std::max({request.compare.size(), request.success.size(), request.failure.size()});
  if (options_.maxTxnOps != 0 && ops > options_.maxTxnOps) {
    return Error(ErrorCode::kRequestTooLarge,
                 "etcd txn of " + std::to_string(ops) + " operations is over the limit of " +
                     std::to_string(options_.maxTxnOps) + " (etcd's --max-txn-ops): split it");
  }
  auto answer = call("/v3/kv/txn", codec::encodeTxn(request), Kind::kWrite);
  if (!answer) return answer.error();
  return codec::decodeTxn(answer->body, answer->where);
}

Result<TxnResponse> Client::commitIf(const TxnRequest& request) {
  auto response = txn(request);
  if (response && !response->succeeded) {
    return Error(ErrorCode::kCompareFailed,
                 "etcd transaction not applied: its compares did not hold at revision " +
                     std::to_string(response->header.revision));
  }
  return response;
}

Result<void> Client::compact(std::int64_t revision, bool physical) {
  // Compacting again what is already compacted changes nothing, so a retried or repeated
  // compaction is not an error.
  auto answer = call("/v3/kv/compaction", codec::encodeCompaction(revision, physical), Kind::kRead);
  if (!answer && answer.error().code() == ErrorCode::kCompacted) return {};
  return headerOnly(answer);
}

// A grant tried again on another member may leave the first lease behind, unused: it expires
// by itself after its TTL, so grants are retried like reads.
Result<LeaseGrant> Client::leaseGrant(std::int64_t ttlSeconds, std::int64_t id) {
  if (ttlSeconds <= 0) {
    return Error(ErrorCode::kInvalidArgument, "etcd lease TTL must be positive");
  }
  auto answer = call("/v3/lease/grant", codec::encodeLeaseGrant(ttlSeconds, id), Kind::kRead);
  if (!answer) return answer.error();
  return codec::decodeLeaseGrant(answer->body, answer->where);
}

Result<LeaseKeepAlive> Client::leaseKeepAlive(std::int64_t id) {
  // The gateway maps the keepalive stream to one POST per renewal; its answer is one line.
  auto answer = call("/v3/lease/keepalive", codec::encodeLeaseId(id), Kind::kRead);
  if (!answer) return answer.error();
  return codec::decodeKeepAliveLine(firstLine(answer->body), answer->where);
}

Result<void> Client::leaseRevoke(std::int64_t id) {
  // Revoking a lease that is already gone leaves it gone: not an error (a retried revoke).
  auto answer = call("/v3/lease/revoke", codec::encodeLeaseId(id), Kind::kRead);
  if (!answer && answer.error().code() == ErrorCode::kLeaseNotFound) return {};
  return headerOnly(answer);
}

Result<LeaseTimeToLive> Client::leaseTimeToLive(std::int64_t id) {
  auto answer = call("/v3/lease/timetolive", codec::encodeLeaseId(id), Kind::kRead);
  if (!answer) return answer.error();
  return codec::decodeLeaseTimeToLive(answer->body, answer->where);
}

Result<void> Client::proclaim(const LeaderKey& leader, const std::string& value) {
  auto answer = call("/v3/election/proclaim", codec::encodeProclaim(leader, value), Kind::kWrite);
  return headerOnly(answer);
}

Result<Leader> Client::leader(const std::string& name) {
  auto answer = call("/v3/election/leader", codec::encodeElectionName(name), Kind::kRead);
  if (!answer) return answer.error();
  return codec::decodeLeader(answer->body, answer->where);
}

Result<void> Client::resign(const LeaderKey& leader) {
  // Resigning twice deletes nothing the second time: retried like a read.
  auto answer = call("/v3/election/resign", codec::encodeResign(leader), Kind::kRead);
  return headerOnly(answer);
}

Result<std::unique_ptr<detail::StreamConnection>> Client::openStream(const char* path,
                                                                     const std::string& body,
                                                                     std::size_t first,
                                                                     std::size_t* index,
                                                                     SteadyTime deadline) {
  std::string failures;
  const std::size_t n = endpoints_.size();
  for (std::size_t tried = 0; tried < n; ++tried) {
    if (interrupted_) return cancelled();
    const std::size_t i = (first + tried) % n;
    auto stream = std::make_unique<detail::StreamConnection>(
        *loop_, *detail::parseEndpoint(options_.endpoints[i]), path, body, options_.maxAnswerBytes);
    if (stream->waitSent(earliest(deadline, steady_clock::now() + options_.attemptTimeout),
                         interrupted_)) {
      *index = i;
      return stream;
    }
    if (interrupted_) return cancelled();
    const Attempt a = stream->failure();
    failures += (failures.empty() ? "" : "; ") + endpoints_[i] + ": " +
                (a.detail.empty() ? "no connection in time" : a.detail);
    if (steady_clock::now() >= deadline) break;
  }
  return Error(ErrorCode::kUnavailable,
               "no etcd member took the stream " + std::string(path) + ": " + failures);
}

Result<CampaignCall> Client::startCampaign(const std::string& name, std::int64_t lease,
                                           const std::string& value) {
  std::size_t index = 0;
  auto stream = openStream("/v3/election/campaign", codec::encodeCampaign(name, lease, value),
                           current_, &index, steady_clock::now() + options_.callTimeout);
  if (!stream) return stream.error();
  return CampaignCall(this, std::move(*stream));
}

Result<ObserveStream> Client::observe(const std::string& name) {
  std::size_t index = 0;
  auto stream = openStream("/v3/election/observe", codec::encodeElectionName(name), current_,
                           &index, steady_clock::now() + options_.callTimeout);
  if (!stream) return stream.error();
  return ObserveStream(this, std::move(*stream));
}

Watcher Client::watch(WatchRequest request) { return Watcher(this, std::move(request)); }

Result<MemberStatus> Client::memberStatus(std::size_t index) {
  if (index >= endpoints_.size()) {
    return Error(ErrorCode::kInvalidArgument, "no etcd member " + std::to_string(index));
  }
  bool sent = false;
  auto answer =
      callMember(index, "/v3/maintenance/status", "{}",
                 steady_clock::now() + options_.attemptTimeout, /*idempotent=*/true, &sent);
  if (!answer) return answer.error();
  return codec::decodeMemberStatus(answer->body, answer->where);
}

Result<std::vector<Alarm>> Client::alarms() {
  auto answer =
      call("/v3/maintenance/alarm",
           codec::encodeAlarm(codec::AlarmAction::kGet, 0, AlarmType::kNone), Kind::kRead);
  if (!answer) return answer.error();
  return codec::decodeAlarms(answer->body, answer->where);
}

Result<void> Client::disarmAlarm(const Alarm& alarm) {
  // Disarming twice leaves the alarm disarmed: retried like a read.
  auto answer = call(
      "/v3/maintenance/alarm",
      codec::encodeAlarm(codec::AlarmAction::kDeactivate, alarm.memberId, alarm.type), Kind::kRead);
  if (!answer) return answer.error();
  if (auto alarms = codec::decodeAlarms(answer->body, answer->where); !alarms) {
    return alarms.error();
  }
  return {};
}

Result<void> Client::defragment(std::size_t index) {
  if (index >= endpoints_.size()) {
    return Error(ErrorCode::kInvalidArgument, "no etcd member " + std::to_string(index));
  }
  bool sent = false;
  auto answer = callMember(index, "/v3/maintenance/defragment", "{}",
                           steady_clock::now() + options_.callTimeout, /*idempotent=*/true, &sent);
  if (!answer) return answer.error();
  return {};
}

// --- CampaignCall

CampaignCall::CampaignCall(Client* client, std::unique_ptr<detail::StreamConnection> call)
    : client_(client), call_(std::move(call)) {}
CampaignCall::CampaignCall(CampaignCall&&) noexcept = default;
CampaignCall& CampaignCall::operator=(CampaignCall&&) noexcept = default;
CampaignCall::~CampaignCall() { cancel(); }

void CampaignCall::cancel() {
  if (call_) call_->close();
}

Result<std::optional<LeaderKey>> CampaignCall::wait(SteadyTime deadline) {
  if (elected_) return elected_;
  if (!call_) return Error(ErrorCode::kCancelled, "campaign cancelled");
  if (client_->interrupted()) return client_->cancelled();
  bool ended = false;
  const auto line = call_->nextLine(deadline, client_->interrupted_, &ended);
  if (client_->interrupted()) return client_->cancelled();
  const std::string& where = call_->endpoint().text;
  std::optional<Result<Campaign>> decoded;
  if (line) {
    decoded = codec::decodeCampaign(*line, where);
  } else if (!ended) {
    return std::optional<LeaderKey>();
  } else {
    const Attempt a = call_->failure();
    if (a.outcome == Attempt::Outcome::kAnswered && a.status == 200) {
      decoded = codec::decodeCampaign(firstLine(a.body), where);
    } else {
      call_.reset();
      return attemptError(a, where);
    }
  }
  call_.reset();
  if (!*decoded) return decoded->error();
  elected_ = (*decoded)->leader;
  return elected_;
}

// --- ObserveStream

ObserveStream::ObserveStream(Client* client, std::unique_ptr<detail::StreamConnection> stream)
    : client_(client), stream_(std::move(stream)) {}
ObserveStream::ObserveStream(ObserveStream&&) noexcept = default;
ObserveStream& ObserveStream::operator=(ObserveStream&&) noexcept = default;
ObserveStream::~ObserveStream() = default;

Result<std::optional<Leader>> ObserveStream::next(SteadyTime deadline) {
  if (!stream_) return Error(ErrorCode::kUnavailable, "observe stream closed");
  if (client_->interrupted()) return client_->cancelled();
  bool ended = false;
  const auto line = stream_->nextLine(deadline, client_->interrupted_, &ended);
  if (client_->interrupted()) return client_->cancelled();
  const std::string where = stream_->endpoint().text;
  if (line) {
    auto leader = codec::decodeObserveLine(*line, where);
    if (!leader) return leader.error();
    return std::optional<Leader>(std::move(*leader));
  }
  if (!ended) return std::optional<Leader>();
  Attempt a = stream_->failure();
  stream_.reset();
  if (a.outcome == Attempt::Outcome::kAnswered && a.status == 200) {
    return Error(ErrorCode::kUnavailable, "etcd at " + where + " ended the observe stream");
  }
  return attemptError(a, where);
}

// --- Watcher

Watcher::Watcher(Client* client, WatchRequest request)
    : client_(client), request_(std::move(request)), memberIndex_(client->current_) {}
Watcher::Watcher(Watcher&&) noexcept = default;
Watcher& Watcher::operator=(Watcher&&) noexcept = default;
Watcher::~Watcher() = default;

std::string Watcher::endpoint() const { return stream_ ? stream_->endpoint().text : ""; }

void Watcher::drop() {
  stream_.reset();
  memberIndex_ = (memberIndex_ + 1) % client_->memberCount();
}

Result<void> Watcher::open(SteadyTime deadline) {
  std::size_t index = 0;
  auto stream = client_->openStream("/v3/watch", codec::encodeWatchCreate(request_), memberIndex_,
                                    &index, deadline);
  if (!stream) return stream.error();
  stream_ = std::move(*stream);
  memberIndex_ = index;
  lastHeard_ = steady_clock::now();
  ++reconnects_;
  return {};
}

Result<std::optional<WatchBatch>> Watcher::next(SteadyTime deadline) {
  const auto& options = client_->options_;
  while (true) {
    if (client_->interrupted()) return client_->cancelled();
    const SteadyTime now = steady_clock::now();
    if (!stream_) {
      if (now >= deadline) return std::optional<WatchBatch>();
      if (auto opened = open(deadline); !opened) {
        if (opened.error().code() == ErrorCode::kCancelled) return opened.error();
        // Nobody took it: wait a little (on the loop, so an interrupt is seen) and try again.
        const auto pause = earliest(deadline, steady_clock::now() + options.attemptTimeout / 4);
        client_->loop_->runUntil([] { return false; }, pause, client_->interrupted_);
        continue;
      }
    }
    bool ended = false;
    const auto line = stream_->nextLine(earliest(deadline, lastHeard_ + options.watchProbeInterval),
                                        client_->interrupted_, &ended);
    if (line) {
      lastHeard_ = steady_clock::now();
      auto message = codec::decodeWatchLine(*line, stream_->endpoint().text);
      if (!message) {
        const Error e = message.error();
        drop();
        // A member that cannot serve (no leader, shutting down) or broke the stream: the next
        // one takes over. A malformed answer is reported (the next call reopens elsewhere).
        if (e.code() == ErrorCode::kBadResponse || e.code() == ErrorCode::kCompacted) return e;
        continue;
      }
      if (message->canceled) {
        const std::string where = stream_->endpoint().text;
        drop();
        if (message->compactRevision > 0) {
          return Error(ErrorCode::kCompacted, "etcd at " + where + ": watch from revision " +
                                                  std::to_string(request_.startRevision) +
                                                  " impossible, history compacted up to revision " +
                                                  std::to_string(message->compactRevision));
        }
        continue;  // cancelled by the member for another reason: resume elsewhere
      }
      if (message->events.empty()) continue;  // created, or progress
      request_.startRevision = message->events.back().kv.modRevision + 1;
      return std::optional<WatchBatch>(WatchBatch{message->header, std::move(message->events)});
    }
    if (ended) {
      drop();
      continue;
    }
    if (steady_clock::now() >= deadline) return std::optional<WatchBatch>();
    // Silent for a probe interval: is the member still serving? (A linearizable read there.)
    RangeRequest probe = RangeRequest::single(request_.key);
    probe.countOnly = true;
    bool sent = false;
    auto answer = client_->callMember(memberIndex_, "/v3/kv/range", codec::encodeRange(probe),
                                      steady_clock::now() + options.attemptTimeout,
                                      /*idempotent=*/true, &sent);
    if (!answer) {
      if (answer.error().code() == ErrorCode::kCancelled) return answer.error();
      drop();
      continue;
    }
    lastHeard_ = steady_clock::now();
  }
}

}  // namespace vrm::etcd
