// Test helper: the world most manager tests start from, vrmd's core without its sockets. An
// in-memory store, a manual clock, a planner, the Manager over them and FakeAgents playing the
// hosts, plus the dedicated request the tests book. Derive a fixture from ManagerFixture, call
// startManager() in SetUp, then add hosts with agents_->addHost().
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "fake_agents.h"
#include "vrm/manager/manager.h"
#include "vrm/planner/migration_model.h"
#include "vrm/planner/vacate_planner.h"

namespace vrm::manager::testing {

constexpr TimeNs kStartOfTime = 1'800'000'000 * kNsPerSec;
constexpr TimeNs kHour = 3600 * kNsPerSec;

// One VM of 8 cores and 16 GiB per host, cloned in 45 s.
inline TemplateSpec bmiTemplate(const std::string& name = "bmi") {
  TemplateSpec t;
  t.name = name;
  t.cpuCores = 8;
  t.memoryBytes = 16 * kGiB;
  t.cloneTimeNs = 45 * kNsPerSec;
  t.vmsPerHost = 1;
  return t;
}

class ManagerFixture : public ::testing::Test {
 protected:
  // Builds store_, manager_ and agents_ over `templates` (templates_ keeps them). Without
  // `planner` the manager plans with planner_: sequential, on the "simple" migration model.
  void startManager(std::vector<TemplateSpec> templates, ManagerOptions options = {},
                    const planner::VacatePlanner* planner = nullptr) {
    templates_ = std::move(templates);
    store_ = std::move(*Store::open(":memory:"));
    planner_ = std::make_unique<planner::SequentialVacatePlanner>(
        std::shared_ptr<const planner::MigrationModel>(
            std::move(*planner::createMigrationModel("simple"))));
    manager_ = std::make_unique<Manager>(clock_, *store_, planner ? *planner : *planner_,
                                         templates_, options);
    agents_ = std::make_unique<FakeAgents>(*manager_);
  }

  // Advances the clock to `t` in steps of at most `step`, the agents heartbeating, the manager
  // ticking and the agents answering at each.
  void runUntil(TimeNs t, TimeNs step = 10 * kNsPerSec) {
    while (clock_.now() < t) {
      clock_.set(std::min(t, clock_.now() + step));
      agents_->heartbeat();
      manager_->tick();
      agents_->pump();
    }
  }

  // Steps a second at a time (as runUntil) until reservation `id` is ready or `bound` has
  // passed; the caller asserts which.
  void runUntilReady(const std::string& id, TimeNs bound) {
    const TimeNs until = clock_.now() + bound;
    while (clock_.now() < until && manager_->get(id)->state != ReservationState::kReady) {
      runUntil(clock_.now() + kNsPerSec, kNsPerSec);
    }
  }

  // A dedicated reservation of `hosts` hosts (0: the test names them in hostNames) of the first
  // template, owned by `owner_`, starting `startIn` from now for `length`.
  ReservationRequest dedicated(TimeNs startIn = 2 * kHour, TimeNs length = kHour,
                               std::uint32_t hosts = 1) const {
    ReservationRequest r;
    r.owner = owner_;
    r.kind = ReservationKind::kDedicated;
    r.hostCount = hosts;
    r.startNs = clock_.now() + startIn;
    r.endNs = r.startNs + length;
    r.templateName = templates_.empty() ? "" : templates_.front().name;
    return r;
  }

  ManualClock clock_{kStartOfTime};
  std::string owner_ = "lab-bmi";  // of dedicated()
  std::vector<TemplateSpec> templates_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<planner::VacatePlanner> planner_;
  std::unique_ptr<Manager> manager_;
  std::unique_ptr<FakeAgents> agents_;
};

}  // namespace vrm::manager::testing
