// The one parser of reservation requests as people give them: `vrmctl submit`'s flags and the
// members of the web API's POST /api/reservations body both become a RequestDraft of named text
// fields, and parseRequest() turns a draft into a checked ReservationRequest or a RequestError
// naming the field and why. So both edges accept the same fields (displaced, max_vm_time, ...)
// and refuse the same mistakes with the same reason.
//
// What is checked here is what the request says by itself: numbers, durations and times parse,
// closed sets (objective, displaced, dry_run) hold a known name, the fields agree with each other
// (shared or dedicated, duration or end, a max VM time only for the degradation objective, no
// displaced VMs for a shared reservation), the window is not empty and does not start before
// `now`. What needs the cluster (known template and hosts, capacity) stays vrmd's to decide.
// Pure functions of their arguments; no I/O, no clock of their own, thread-compatible.
#pragma once

#include <cassert>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "vrm/protocol/reservation.h"
#include "vrm/protocol/status.h"
#include "vrm/protocol/time.h"

namespace vrm::client {

// A field of a request. kBody is the request as a whole (malformed JSON, an unknown member).
enum class RequestField {
  kBody,
  kHosts,
  kHostNames,
  kVms,
  kVmsPerHost,
  kStart,
  kStartNs,
  kDuration,
  kEnd,
  kEndNs,
  kTemplate,
  kLabel,
  kOwner,
  kObjective,
  kMaxVmTime,
  kDisplaced,
  kDryRun,
  kSshPublicKey,
};
// The field as the web API's JSON member is called: "max_vm_time", "host_names"; "" for kBody.
const char* requestFieldName(RequestField field);
// The field as vrmctl submit's flag is called: "--max-vm-time", "--host"; "" for kBody.
// (start_ns and end_ns have no flags of their own: "--start", "--end".)
const char* requestFieldFlag(RequestField field);

// Why a request cannot be submitted, and which field says so.
struct RequestError {
  RequestField field = RequestField::kBody;
  std::string reason;  // e.g. "unknown value 'fastest' (makespan, degradation)"

  // "max_vm_time: <reason>" (the JSON member's name; just the reason for kBody).
  std::string message() const;
  // "--max-vm-time: <reason>": the same reason, the field as vrmctl's user typed it.
  std::string flagMessage() const;
  // invalid-argument with message().
  Status status() const;
};

// A value or the RequestError that stopped it.
template <typename T>
class [[nodiscard]] RequestResult {
 public:
  RequestResult(T value) : v_(std::move(value)) {}             // NOLINT: implicit by design
  RequestResult(RequestError error) : v_(std::move(error)) {}  // NOLINT
  bool isOk() const { return std::holds_alternative<T>(v_); }
  explicit operator bool() const { return isOk(); }
  const RequestError& error() const {
    assert(!isOk());
    return std::get<RequestError>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, RequestError> v_;
};

// A request's fields as given, each as text; "" = not given. Whole numbers are decimal digits;
// times are parseTimeSpec() forms (time_spec.h) or, for startNs/endNs, integer nanoseconds since
// the epoch (give a time one way, not both); durations are parseDurationNs() forms (units.h).
struct RequestDraft {
  std::string hosts;                   // dedicated: how many hosts, 0..100000
  std::vector<std::string> hostNames;  // dedicated: or exactly these (at most 1000)
  std::string vms;                     // shared: how many VMs, 0..100000 (0 = dedicated)
  std::string vmsPerHost;              // dedicated: clones per host, 0..100000 (0 = the template's)
  std::string start;                   // required, unless startNs
  std::string startNs;
  std::string duration;  // exactly one of duration and end / endNs
  std::string end;
  std::string endNs;
  std::string templateName;  // required
  std::string label;         // at most 1000 bytes, like templateName and owner
  std::string owner;         // copied as is ("" = the edge decides who)
  std::string objective;     // "makespan" (default) or "degradation"
  std::string maxVmTime;     // a duration; needs objective degradation
  std::string displaced;     // dedicated: "stay" (default) or "return"
  std::string dryRun;        // "true" or "false" (default)
  std::string sshPublicKey;  // one OpenSSH public key line; trailing blanks and newlines dropped
};

// The checked request, with relative times ("+2h", "now") read against `now` (vrmd's clock: it
// may run faster than ours). The first error found, in the order of RequestField.
[[nodiscard]] RequestResult<ReservationRequest> parseRequest(const RequestDraft& draft, TimeNs now);

// The web API's body (a JSON object; members named by requestFieldName(), null = not given) as a
// draft. Members are typed: hosts, vms, vms_per_host, start_ns, end_ns JSON integers; host_names
// a list of strings; dry_run a boolean; the rest strings. Errors name the member (or kBody for
// malformed JSON, a body that is not an object, or an unknown member).
[[nodiscard]] RequestResult<RequestDraft> requestDraftFromJson(std::string_view body);

}  // namespace vrm::client
