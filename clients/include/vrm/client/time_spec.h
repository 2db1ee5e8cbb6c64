// Times as people type them: ISO 8601 ("2026-11-23T14:00:00Z", "2026-11-23T14:00",
// "2026-11-23 14:00", a trailing "Z" or "+HH:MM" offset; no offset means UTC), "now", or a
// time relative to `now`, later ("+2h", "+90min", "+1d") or earlier ("-7d": what a report looks
// back to). Errors are invalid-argument naming the accepted forms.
#pragma once

#include <string_view>

#include "vrm/protocol/status.h"
#include "vrm/protocol/time.h"

namespace vrm::client {

Result<TimeNs> parseTimeSpec(std::string_view text, TimeNs now);

}  // namespace vrm::client
