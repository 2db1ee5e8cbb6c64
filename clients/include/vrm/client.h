// The client library's entry point for job managers: vrm::client::Client (submit, get, list,
// cancel, hosts, vms, waitUntilReady with event callbacks) and the reservation vocabulary.
// See vrm/client/client.h for the contract.
#pragma once

#include "vrm/client/client.h"         // IWYU pragma: export
#include "vrm/client/time_spec.h"      // IWYU pragma: export
#include "vrm/protocol/reservation.h"  // IWYU pragma: export
