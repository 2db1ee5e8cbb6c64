// How one reservation event's delivery to one webhook fared (README: Notifications): what
// `vrmctl show` prints per webhook. vrmd's Notifier (vrm/manager/notifier.h) keeps these; the
// get reply carries them (ClientReply.deliveries). Value type, not thread-safe.
#pragma once

#include <cstdint>
#include <string>

#include "vrm/protocol/time.h"

namespace vrm {

enum class DeliveryState {
  kPending,    // not attempted yet, or an attempt under way
  kDelivered,  // the endpoint answered 2xx
  kFailing,    // the last attempt failed; tried again at nextAttemptNs
  kGaveUp,     // still failing when vrmd stopped trying
};
const char* deliveryStateName(DeliveryState state);  // "pending", "delivered", "failing", ...

struct WebhookDelivery {
  std::string url;      // the webhook's URL without its query string (it may carry a token)
  std::string eventId;  // the id in the body: "r5.e3", "r5.before-end"
  std::string kind;     // "admitted", "ready", ... (notificationKindName)
  DeliveryState state = DeliveryState::kPending;
  std::uint32_t attempts = 0;  // POSTs made so far
  std::string lastError;       // why the last attempt failed ("" when none has)
  TimeNs lastAttemptNs = 0;    // vrmd's clock; 0 = not attempted yet
  TimeNs nextAttemptNs = 0;    // pending / failing: when it is tried next
};

}  // namespace vrm
