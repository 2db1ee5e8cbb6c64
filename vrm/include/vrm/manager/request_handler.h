// The part of vrmd's network edge that has no sockets: one frame in, the manager called, the
// reply frame out. The server (server.h) moves frames between sockets and these functions;
// fuzz targets and tests call them directly.
//
// Frames are untrusted: decoded with protocol::decodeFrame (limits, alignment), and wire types
// become domain types here and nowhere else. Neither function throws on bad input.
#pragma once

#include <optional>
#include <string>
#include <zmq.hpp>

#include "vrm/manager/admission_metrics.h"
#include "vrm/manager/auth.h"
#include "vrm/manager/manager.h"
#include "vrm/manager/notifier.h"
#include "vrm/manager/store_backups.h"
#include "vrm/protocol/codec.h"

namespace vrm::manager {

// Answers one client request frame from `caller` with exactly one ClientReply frame; a
// malformed request gets status invalid-argument (request id 0 when it could not be read).
//
// Authorisation (auth.h): the caller is who the request is served as; the request's own
// `requester` field is ignored here (the server turns it into a Caller only in insecure mode,
// requesterOf below). Submits need a user or admin: a user's reservation is owned by the
// user (an empty owner becomes the caller's name; another owner is unauthorized), an admin may
// name any owner. Cancels need mayActFor(owner). Reservations and VMs of reservations the
// caller may not act for are returned without handles (clone addresses and accounts blank).
// Backups (store_backups.h) are for admins only (unauthorized otherwise), and unavailable when
// `backups` is null. When the request was a submit, `submitted` (if given) is set to what it
// came to, for the admission metrics; it is left alone otherwise. A get reply carries the
// reservation's webhook deliveries from `notifier` (if given) to callers who may act for its
// owner.
struct SubmitAnswer {
  SubmitDecision decision = SubmitDecision::kError;
  bool dryRun = false;
};
zmq::message_t answerClientFrame(Manager& manager, const Clock& clock, const Caller& caller,
                                 zmq::message_t payload, const protocol::DecodeLimits& limits,
                                 StoreBackups* backups = nullptr,
                                 std::optional<SubmitAnswer>* submitted = nullptr,
                                 const Notifier* notifier = nullptr);

// The `requester` field of a client request frame, or "" when the frame cannot be read. Does
// not consume the frame.
std::string requesterOf(const zmq::message_t& payload, const protocol::DecodeLimits& limits);

// Blanks what gives access to a reservation's VMs (clone addresses and accounts).
void hideHandles(Reservation& r);

// Applies one AgentMessage frame from the agent of `host`: the host its CURVE key is bound to
// (insecure mode: its routing id). A registration for another host is unauthorized. Returns the
// ManagerMessage to send back to that agent (the answer to a registration, or "register again"), if
// any. Malformed frames are logged and dropped: agents get no error replies.
std::optional<zmq::message_t> applyAgentFrame(Manager& manager, const std::string& host,
                                              zmq::message_t payload,
                                              const protocol::DecodeLimits& limits);

}  // namespace vrm::manager
