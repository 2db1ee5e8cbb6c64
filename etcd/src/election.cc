#include "vrm/etcd/election.h"

#include <algorithm>

namespace vrm::etcd {
namespace {

using std::chrono::milliseconds;

}  // namespace

Compare Fence::compare() const {
  return Compare::createRevision(leaderKey, Compare::Op::kEqual, revision);
}

void Fence::attachTo(TxnRequest& txn) const { txn.compare.push_back(compare()); }

Result<TxnResponse> Election::commitFenced(Client& client, const Fence& fence, TxnRequest txn) {
  fence.attachTo(txn);
  // When the compares fail, read the leader key too, to tell a lost fence from the caller's
  // own compares.
  txn.failure.push_back(RangeRequest::single(fence.leaderKey));
  auto response = client.txn(txn);
  if (!response || response->succeeded) return response;
  const auto* leader = std::get_if<RangeResponse>(&response->responses.back());
  if (leader == nullptr || leader->kvs.empty() || leader->kvs[0].createRevision != fence.revision) {
    return Error(ErrorCode::kDeposed, "not leader any more: the leader key " + fence.leaderKey +
                                          " of revision " + std::to_string(fence.revision) +
                                          " is gone; nothing was committed");
  }
  return Error(ErrorCode::kCompareFailed,
               "etcd transaction not applied: its compares did not hold at revision " +
                   std::to_string(response->header.revision));
}

Result<std::unique_ptr<Election>> Election::start(ClientOptions client, ElectionOptions options,
                                                  Listener listener) {
  if (options.name.empty()) {
    return Error(ErrorCode::kInvalidArgument, "election: the name is empty");
  }
  if (options.leaseTtl.count() < 1) {
    return Error(ErrorCode::kInvalidArgument, "election: the lease TTL must be at least 1 s");
  }
  const milliseconds ttl = options.leaseTtl;
  if (options.renewInterval.count() == 0) options.renewInterval = ttl / 3;
  if (options.safetyMargin.count() == 0) {
    options.safetyMargin = std::max(milliseconds(100), ttl / 10);
  }
  if (options.renewInterval.count() < 0 || options.renewInterval >= ttl ||
      options.safetyMargin.count() < 0 || options.safetyMargin + options.renewInterval >= ttl) {
    return Error(ErrorCode::kInvalidArgument,
                 "election: renewal interval + safety margin must be shorter than the TTL");
  }
  if (options.retryDelay.count() <= 0) {
    return Error(ErrorCode::kInvalidArgument, "election: the retry delay must be positive");
  }
  // A renewal must not outlast its interval, or renewals fall behind the lease.
  client.callTimeout = std::min(client.callTimeout, options.renewInterval);
  client.attemptTimeout =
      std::min(client.attemptTimeout, std::max(milliseconds(100), options.renewInterval / 2));
  auto c = Client::create(std::move(client));
  if (!c) return c.error();
  std::unique_ptr<Election> election(
      new Election(std::move(*c), std::move(options), std::move(listener)));
  election->thread_ = std::thread([e = election.get()] { e->run(); });
  return election;
}

Election::Election(std::unique_ptr<Client> client, ElectionOptions options, Listener listener)
    : client_(std::move(client)), options_(std::move(options)), listener_(std::move(listener)) {}

Election::~Election() { stop(); }

void Election::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool Election::stopping() const {
  std::lock_guard lock(mu_);
  return stopping_;
}

bool Election::pause(SteadyClock::time_point until) {
  std::unique_lock lock(mu_);
  wake_.wait_until(lock, until, [&] { return stopping_; });
  return !stopping_;
}

std::optional<Fence> Election::fence() const {
  std::lock_guard lock(mu_);
  if (fence_ && SteadyClock::now() < leadUntil_) return fence_;
  return std::nullopt;
}

std::string Election::leaderValue() const {
  std::lock_guard lock(mu_);
  return leaderValue_;
}

void Election::setLeader(std::optional<Fence> fence) {
  std::lock_guard lock(mu_);
  fence_ = std::move(fence);
  leadUntil_ = leaseDeadline_ - options_.safetyMargin;
  // Leading, the leader is us; after stepping down it is unknown until learnLeader().
  leaderValue_ = fence_ ? options_.value : "";
}

void Election::emit(const LeadershipEvent& event) {
  if (listener_) listener_(event);
}

void Election::run() {
  while (!stopping()) {
    candidacy();
    if (!pause(SteadyClock::now() + options_.retryDelay)) break;
  }
}

Result<void> Election::renew(std::int64_t lease) {
  const auto sent = SteadyClock::now();
  auto renewed = client_->leaseKeepAlive(lease);
  if (!renewed) return renewed.error();
  leaseDeadline_ = sent + std::chrono::seconds(renewed->ttlSeconds);
  return {};
}

void Election::learnLeader() {
  auto leader = client_->leader(options_.name);
  std::string value;
  if (leader) {
    value = leader->kv.value;
  } else if (leader.error().code() != ErrorCode::kNotFound) {
    return;  // unknown: keep what we knew
  }
  {
    std::lock_guard lock(mu_);
    if (value == leaderValue_) return;
    leaderValue_ = value;
  }
  LeadershipEvent event;
  event.kind = LeadershipEvent::Kind::kLeaderChanged;
  event.leaderValue = value;
  emit(event);
}

void Election::candidacy() {
  const auto granted = SteadyClock::now();
  auto grant = client_->leaseGrant(options_.leaseTtl.count());
  if (!grant) return;
  const std::int64_t lease = grant->id;
  ttl_ = std::chrono::seconds(grant->ttlSeconds);
  leaseDeadline_ = granted + ttl_;
  const milliseconds interval = options_.renewInterval;
  auto nextRenewal = SteadyClock::now() + interval;
  std::optional<CampaignCall> campaign;
  learnLeader();
  while (!stopping()) {
    if (!campaign) {
      auto started = client_->startCampaign(options_.name, lease, options_.value);
      if (started) {
        campaign.emplace(std::move(*started));
      } else if (!pause(std::min(nextRenewal, SteadyClock::now() + options_.retryDelay))) {
        break;
      }
    }
    if (campaign) {
      auto outcome = campaign->wait(nextRenewal);
      if (!outcome) {
        campaign.reset();
        // The lease is gone: a new candidacy. A lost member: campaign again with the same
        // lease, which finds our queued key and keeps its place.
        if (outcome.error().code() == ErrorCode::kLeaseNotFound) return;
      } else if (outcome->has_value()) {
        lead(**outcome);
        return;
      }
    }
    if (SteadyClock::now() < nextRenewal) continue;
    if (auto renewed = renew(lease); renewed) {
      nextRenewal = SteadyClock::now() + interval;
      learnLeader();
    } else if (renewed.error().code() == ErrorCode::kLeaseNotFound ||
               SteadyClock::now() >= leaseDeadline_ - options_.safetyMargin) {
      return;  // the lease is lost (or cannot be proven alive): start over with a new one
    } else {
      nextRenewal = SteadyClock::now() + interval / 4;
    }
  }
  // Stopping as a follower: withdraw (the campaign's connection closes) and end the lease.
  campaign.reset();
  (void)client_->leaseRevoke(lease);
}

void Election::lead(const LeaderKey& key) {
  // Renew once first: the campaign may have waited long, and the term starts with a lease
  // proven alive now.
  if (!renew(key.lease)) return;
  setLeader(Fence{key.key, key.rev, key.lease});
  LeadershipEvent elected;
  elected.kind = LeadershipEvent::Kind::kElected;
  elected.fence = Fence{key.key, key.rev, key.lease};
  elected.leaderValue = options_.value;
  emit(elected);

  const milliseconds interval = options_.renewInterval;
  auto nextRenewal = SteadyClock::now() + interval;
  std::string reason;
  while (reason.empty()) {
    if (!pause(nextRenewal)) {
      reason = "stopped";
      break;
    }
    auto renewed = renew(key.lease);
    if (renewed) {
      {
        std::lock_guard lock(mu_);
        leadUntil_ = leaseDeadline_ - options_.safetyMargin;
      }
      nextRenewal = SteadyClock::now() + interval;
      // Our key may have been deleted while the lease lives (an operator, a resign elsewhere).
      auto leader = client_->leader(options_.name);
      if (leader && leader->kv.key != key.key) {
        reason = "another candidate's key leads";
      } else if (!leader && leader.error().code() == ErrorCode::kNotFound) {
        reason = "the leader key is gone";
      }
    } else if (renewed.error().code() == ErrorCode::kLeaseNotFound) {
      reason = "the lease expired";
    } else if (SteadyClock::now() >= leaseDeadline_ - options_.safetyMargin) {
      reason = "no renewal before the lease's deadline (" + renewed.error().toString() + ")";
    } else {
      nextRenewal = SteadyClock::now() + interval / 4;  // fence() still holds: try again soon
    }
  }
  setLeader(std::nullopt);
  LeadershipEvent down;
  down.kind = LeadershipEvent::Kind::kSteppedDown;
  down.reason = reason;
  emit(down);
  // Ending the lease deletes the key at once, so the next candidate does not wait for the TTL.
  // (After a lost lease this fails harmlessly.)
  (void)client_->leaseRevoke(key.lease);
}

}  // namespace vrm::etcd
