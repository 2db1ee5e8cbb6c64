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

#include "vrm/manager/manager.h"
#include "vrm/protocol/codec.h"

namespace vrm::manager {

// Answers one client request frame with exactly one ClientReply frame; a malformed request gets
// status invalid-argument (request id 0 when it could not be read).
zmq::message_t answerClientFrame(Manager& manager, const Clock& clock, zmq::message_t payload,
                                 const protocol::DecodeLimits& limits);

// Applies one AgentMessage frame from the agent connected as `host`. Returns the ManagerMessage
// to send back to that agent (the answer to a registration, or "register again"), if any.
// Malformed frames are logged and dropped: agents get no error replies.
std::optional<zmq::message_t> applyAgentFrame(Manager& manager, const std::string& host,
                                              zmq::message_t payload,
                                              const protocol::DecodeLimits& limits);

}  // namespace vrm::manager
