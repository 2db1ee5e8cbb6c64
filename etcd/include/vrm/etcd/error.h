// Typed failures of the etcd client.
//
// vrm::Status has a small closed set of codes shared by the whole project; a caller of etcd must
// tell apart failures that vrm::Status lumps together (a write that certainly did not happen
// from one that may have; a full database from an unreachable one). So this library has its own
// Error with an ErrorCode, convertible to a vrm::Status at the boundary (toStatus()), and its
// own Result<T> shaped like vrm::Result. Neither throws.
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <utility>
#include <variant>

#include "vrm/protocol/status.h"

namespace vrm::etcd {

enum class ErrorCode {
  // No member could be reached, or every member that answered said it cannot serve now (no
  // raft leader). A write that fails so was not applied.
  kUnavailable,
  // No answer before the deadline. A write that fails so MAY have been applied: read back to
  // know.
  kTimeout,
  // The NOSPACE alarm is raised (the backend reached --quota-backend-bytes): etcd refuses every
  // write but deletes until history is compacted, the members defragmented and the alarm
  // disarmed. Reads work.
  kNoSpace,
  // The request is over etcd's --max-request-bytes (1.5 MiB by default), the gRPC message
  // limit or --max-txn-ops (128), refused by this client before sending or by the server. Not
  // applied.
  kRequestTooLarge,
  // A transaction's compares did not hold (Client::commitIf). Nothing was applied.
  kCompareFailed,
  // A fenced commit's fence no longer holds: the candidate that made it no longer leads
  // (election.h). Nothing was applied.
  kDeposed,
  // The lease expired or was revoked (a keepalive, or a put/campaign naming it).
  kLeaseNotFound,
  // The revision asked for was compacted away: re-read the current state instead.
  kCompacted,
  // What was asked for does not exist (an election without a leader).
  kNotFound,
  // The request was malformed (refused by this client or by the server). Not applied.
  kInvalidArgument,
  // The server's answer does not follow the API (not HTTP, not JSON, missing or mistyped
  // fields, bad base64). Its outcome for a write is unknown.
  kBadResponse,
  // Client::interrupt() was called during the blocking call.
  kCancelled,
  // Any other error etcd reported, with its message.
  kServer,
};

// Stable lower-case name ("unavailable", "no-space", ...), for logs.
const char* errorCodeName(ErrorCode code);

class Error {
 public:
  Error(ErrorCode code, std::string message) : code_(code), message_(std::move(message)) {}

  ErrorCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "no-space: etcd at 127.0.0.1:2379: etcdserver: mvcc: database space exceeded"
  std::string toString() const;
  // The nearest vrm::Status: unavailable for kUnavailable/kTimeout/kNoSpace/kCancelled,
  // invalid-argument for kRequestTooLarge/kInvalidArgument, rejected for kCompareFailed/kDeposed,
  // not-found for kLeaseNotFound/kCompacted/kNotFound, internal otherwise. The message keeps
  // this error's name.
  Status toStatus() const;

 private:
  ErrorCode code_;
  std::string message_;
};

// A value or the Error there is none.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}      // NOLINT: implicit by design
  Result(Error error) : v_(std::move(error)) {}  // NOLINT

  bool isOk() const { return std::holds_alternative<T>(v_); }
  explicit operator bool() const { return isOk(); }
  // Only when !isOk().
  const Error& error() const {
    assert(!isOk());
    return std::get<Error>(v_);
  }
  // Ok when isOk(); error().toStatus() otherwise.
  Status status() const { return isOk() ? Status::ok() : error().toStatus(); }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }

 private:
  std::variant<T, Error> v_;
};

// Success without a value, or the Error.
template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)) {}  // NOLINT

  bool isOk() const { return !error_.has_value(); }
  explicit operator bool() const { return isOk(); }
  const Error& error() const {
    assert(!isOk());
    return *error_;
  }
  Status status() const { return isOk() ? Status::ok() : error_->toStatus(); }

 private:
  std::optional<Error> error_;
};

}  // namespace vrm::etcd
