// Typed outcomes for expected failures.
//
// A Status is ok or carries a code and a one-line message a person can act on. Result<T> holds
// a value or a non-ok Status. Both are cheap value types; neither throws. Exceptions stay for
// bugs and for the codec boundary (see codec.h).
#pragma once

#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace vrm {

enum class StatusCode {
  kOk = 0,
  kRejected,         // well-formed request refused (capacity, deadline, conflict)
  kInvalidArgument,  // malformed or impossible input
  kNotFound,
  kUnauthorized,
  kInternal,
  kUnavailable,  // a peer or resource cannot be reached
};

// Stable lower-case name ("ok", "rejected", "invalid-argument", ...), used in logs and JSON.
const char* statusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // ok
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status ok() { return Status(); }
  static Status rejected(std::string m) { return {StatusCode::kRejected, std::move(m)}; }
  static Status invalid(std::string m) { return {StatusCode::kInvalidArgument, std::move(m)}; }
  static Status notFound(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
  static Status unauthorized(std::string m) { return {StatusCode::kUnauthorized, std::move(m)}; }
  static Status internal(std::string m) { return {StatusCode::kInternal, std::move(m)}; }
  static Status unavailable(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }

  bool isOk() const { return code_ == StatusCode::kOk; }
  explicit operator bool() const { return isOk(); }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "invalid-argument: end is before start"
  std::string toString() const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

// A value or the reason there is none.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) { assert(!std::get<Status>(v_).isOk()); }  // NOLINT

  bool isOk() const { return std::holds_alternative<T>(v_); }
  explicit operator bool() const { return isOk(); }
  const Status& status() const {
    static const Status kOk;
    return isOk() ? kOk : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace vrm
