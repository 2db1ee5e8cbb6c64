#include "vrm/etcd/error.h"

namespace vrm::etcd {

const char* errorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::kUnavailable:
      return "unavailable";
    case ErrorCode::kTimeout:
      return "timeout";
    case ErrorCode::kNoSpace:
      return "no-space";
    case ErrorCode::kRequestTooLarge:
      return "request-too-large";
    case ErrorCode::kCompareFailed:
      return "compare-failed";
    case ErrorCode::kDeposed:
      return "deposed";
    case ErrorCode::kLeaseNotFound:
      return "lease-not-found";
    case ErrorCode::kCompacted:
      return "compacted";
    case ErrorCode::kNotFound:
      return "not-found";
    case ErrorCode::kInvalidArgument:
      return "invalid-argument";
    case ErrorCode::kBadResponse:
      return "bad-response";
    case ErrorCode::kCancelled:
      return "cancelled";
    case ErrorCode::kServer:
      return "server-error";
  }
  return "unknown";
}

std::string Error::toString() const { return std::string(errorCodeName(code_)) + ": " + message_; }

Status Error::toStatus() const {
  std::string m = "etcd " + toString();
  switch (code_) {
    case ErrorCode::kUnavailable:
    case ErrorCode::kTimeout:
    case ErrorCode::kNoSpace:
    case ErrorCode::kCancelled:
      return Status::unavailable(std::move(m));
    case ErrorCode::kRequestTooLarge:
    case ErrorCode::kInvalidArgument:
      return Status::invalid(std::move(m));
    case ErrorCode::kCompareFailed:
    case ErrorCode::kDeposed:
      return Status::rejected(std::move(m));
    case ErrorCode::kLeaseNotFound:
    case ErrorCode::kCompacted:
    case ErrorCode::kNotFound:
      return Status::notFound(std::move(m));
    case ErrorCode::kBadResponse:
    case ErrorCode::kServer:
      break;
  }
  return Status::internal(std::move(m));
}

}  // namespace vrm::etcd
