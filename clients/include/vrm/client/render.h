// How vrmctl (and the web API later) shows reservations, hosts and VMs: JSON for scripts and
// plain text tables for people. JSON field names are a contract (README "JSON output").
#pragma once

#include <string>
#include <vector>

#include "vrm/protocol/reservation.h"
#include "vrm/protocol/webhook_delivery.h"

namespace vrm::client {

std::string reservationJson(const Reservation& r, int indent = 2);
std::string reservationsJson(const std::vector<Reservation>& rs, int indent = 2);
std::string hostsJson(const std::vector<HostRecord>& hosts, int indent = 2);
std::string vmsJson(const std::vector<VmRecord>& vms, int indent = 2);

// Multi-line description: window, hosts, plan table with a timeline, handles, events.
std::string reservationText(const Reservation& r, TimeNs now);
// vrmctl show's webhook lines (README: Notifications), one per webhook URL: "delivered" when
// every event reached it, else how many are pending / failing / given up, with the oldest
// unsettled one's attempts, last error and next try. "" when there are no deliveries.
std::string webhookDeliveriesText(const std::vector<WebhookDelivery>& deliveries, TimeNs now);
// The reservation's JSON with a "webhooks" array (one object per delivery) when there are any.
std::string reservationJson(const Reservation& r, const std::vector<WebhookDelivery>& deliveries,
                            int indent = 2);
// One line per reservation.
std::string reservationsTable(const std::vector<Reservation>& rs);
std::string hostsTable(const std::vector<HostRecord>& hosts, const std::vector<VmRecord>& vms,
                       TimeNs now);
std::string vmsTable(const std::vector<VmRecord>& vms);

}  // namespace vrm::client
