#include "vrm/manager/reservation_registry.h"

#include <gtest/gtest.h>

#include "sample_reservation.h"

namespace vrm::manager {
namespace {

// Fails `ids` in that order (the first is the cause), each with its own event.
class FailAll final : public ReservationOp {
 public:
  explicit FailAll(std::vector<std::string> ids) : ids_(std::move(ids)) {}
  std::string describe() const override { return "fail all"; }
  bool perform(ReservationDraft& draft) override {
    for (const auto& id : ids_) {
      Reservation* r = draft.edit(id);
      if (!r) return false;
      r->state = ReservationState::kFailed;
      r->reason = "because";
      r->events.push_back({2, ReservationState::kFailed, id + " failed"});
    }
    return true;
  }

 private:
  std::vector<std::string> ids_;
};

class NoChange final : public ReservationOp {
 public:
  std::string describe() const override { return "nothing"; }
  bool perform(ReservationDraft& draft) override {
    draft.edit("r1")->reason = "scratch";  // changed, but the op says it changed nothing
    return false;
  }
};

class ReservationRegistryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = std::move(*Store::open(":memory:"));
    registry_ = std::make_unique<ReservationRegistry>(*store_);
    for (const char* id : {"r1", "r2"}) {
      AdmitReservation admit(admittedReservation(id));
      ASSERT_TRUE(registry_->apply(admit).isOk());
    }
    (void)registry_->takeEvents();
  }
  // The reservations a restart would find.
  std::map<std::string, Reservation> stored() {
    ReservationRegistry again(*store_);
    EXPECT_TRUE(again.recover().isOk());
    return again.all();
  }

  std::unique_ptr<Store> store_;
  std::unique_ptr<ReservationRegistry> registry_;
};

// Ensures an admitted reservation is stored before it is in memory and its events are queued.
TEST_F(ReservationRegistryTest, AdmitIsStoredAndPublished) {
  AdmitReservation admit(admittedReservation("r3"));
  auto applied = registry_->apply(admit);
  ASSERT_TRUE(applied.isOk()) << applied.status().toString();
  EXPECT_EQ(*applied, (std::vector<std::string>{"r3"}));
  ASSERT_NE(registry_->find("r3"), nullptr);
  EXPECT_EQ(stored().count("r3"), 1u);
  auto events = registry_->takeEvents();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].second.id, "r3");
  EXPECT_TRUE(registry_->takeEvents().empty());
}

// Ensures an op changing several reservations saves them together and publishes their events
// cause first (the order it touched them), after the commit.
TEST_F(ReservationRegistryTest, SeveralReservationsOneOpCauseFirst) {
  FailAll op({"r2", "r1"});
  auto applied = registry_->apply(op);
  ASSERT_TRUE(applied.isOk()) << applied.status().toString();
  EXPECT_EQ(*applied, (std::vector<std::string>{"r2", "r1"}));
  auto events = registry_->takeEvents();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].first.message, "r2 failed");
  EXPECT_EQ(events[1].first.message, "r1 failed");
  EXPECT_EQ(events[1].second.state, ReservationState::kFailed);
  auto s = stored();
  EXPECT_EQ(s.at("r1").state, ReservationState::kFailed);
  EXPECT_EQ(s.at("r2").state, ReservationState::kFailed);
}

// Ensures an op the store refuses (a full disk) changes nothing: memory, store and events are
// as before, and the same op applies once the store takes writes again.
TEST_F(ReservationRegistryTest, FailedSaveLeavesEverythingUnchanged) {
  ASSERT_TRUE(store_->setQueryOnly(true).isOk());
  FailAll op({"r2", "r1"});
  auto applied = registry_->apply(op);
  EXPECT_EQ(applied.status().code(), StatusCode::kInternal);
  EXPECT_EQ(registry_->find("r1")->state, ReservationState::kAdmitted);
  EXPECT_EQ(registry_->find("r2")->state, ReservationState::kAdmitted);
  EXPECT_EQ(registry_->find("r1")->events.size(), 1u);
  EXPECT_TRUE(registry_->takeEvents().empty());
  EXPECT_FALSE(registry_->anyUnsaved());
  AdmitReservation admit(admittedReservation("r3"));
  EXPECT_FALSE(registry_->apply(admit).isOk());
  EXPECT_EQ(registry_->find("r3"), nullptr);

  ASSERT_TRUE(store_->setQueryOnly(false).isOk());
  EXPECT_EQ(stored().at("r1").state, ReservationState::kAdmitted);
  ASSERT_TRUE(registry_->apply(op).isOk());
  EXPECT_EQ(registry_->takeEvents().size(), 2u);
  EXPECT_EQ(stored().at("r1").state, ReservationState::kFailed);
}

// Ensures an op that reports no change saves nothing and leaves its scratch edits unseen.
TEST_F(ReservationRegistryTest, OpWithoutChangeSavesNothing) {
  NoChange op;
  auto applied = registry_->apply(op);
  ASSERT_TRUE(applied.isOk());
  EXPECT_TRUE(applied->empty());
  EXPECT_EQ(registry_->find("r1")->reason, "");
  EXPECT_TRUE(registry_->takeEvents().empty());
}

// Ensures the compatibility path keeps a reservation the store refused unsaved, its events
// unpublished, until a retry stores it.
TEST_F(ReservationRegistryTest, InPlaceSaveRefusedIsRetried) {
  ASSERT_TRUE(store_->setQueryOnly(true).isOk());
  Reservation& r = registry_->inPlace().at("r1");
  r.state = ReservationState::kVacating;
  r.events.push_back({3, ReservationState::kVacating, "vacating"});
  EXPECT_FALSE(registry_->saveInPlace("r1").isOk());
  EXPECT_TRUE(registry_->unsaved("r1"));
  EXPECT_TRUE(registry_->takeEvents().empty());
  EXPECT_TRUE(registry_->retryUnsaved().empty());

  ASSERT_TRUE(store_->setQueryOnly(false).isOk());
  EXPECT_EQ(registry_->retryUnsaved(), (std::vector<std::string>{"r1"}));
  EXPECT_FALSE(registry_->anyUnsaved());
  auto events = registry_->takeEvents();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].first.message, "vacating");
  EXPECT_EQ(stored().at("r1").state, ReservationState::kVacating);
}

// Ensures the saves of one batch (a change of several reservations on the compatibility path)
// are one transaction with the cause first: refused, none is stored or published; once the
// store takes writes, a retry stores them.
TEST_F(ReservationRegistryTest, BatchSavesTogetherCauseFirst) {
  auto change = [&](const std::string& id) {
    Reservation& r = registry_->inPlace().at(id);
    r.state = ReservationState::kFailed;
    r.events.push_back({3, ReservationState::kFailed, id + " failed"});
  };
  {
    ReservationRegistry::Batch batch(*registry_, "r2");
    change("r1");  // a victim saved before its cause, as repairAfter does
    ASSERT_TRUE(registry_->saveInPlace("r1").isOk());
    {
      ReservationRegistry::Batch nested(*registry_, "r1");  // joins the outer batch
      change("r2");
      ASSERT_TRUE(registry_->saveInPlace("r2").isOk());
    }
    EXPECT_TRUE(registry_->takeEvents().empty()) << "published before the batch was stored";
    EXPECT_EQ(stored().at("r2").state, ReservationState::kAdmitted);
  }
  auto events = registry_->takeEvents();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].first.message, "r2 failed");
  EXPECT_EQ(events[1].first.message, "r1 failed");
  EXPECT_EQ(stored().at("r1").state, ReservationState::kFailed);
  EXPECT_EQ(stored().at("r2").state, ReservationState::kFailed);

  ASSERT_TRUE(store_->setQueryOnly(true).isOk());
  {
    ReservationRegistry::Batch batch(*registry_, "r1");
    registry_->inPlace().at("r1").events.push_back({4, ReservationState::kFailed, "again"});
    registry_->inPlace().at("r2").events.push_back({4, ReservationState::kFailed, "again"});
    (void)registry_->saveInPlace("r2");
    (void)registry_->saveInPlace("r1");
  }
  EXPECT_TRUE(registry_->unsaved("r1"));
  EXPECT_TRUE(registry_->unsaved("r2"));
  EXPECT_TRUE(registry_->takeEvents().empty());
  ASSERT_TRUE(store_->setQueryOnly(false).isOk());
  EXPECT_EQ(registry_->retryUnsaved().size(), 2u);
  EXPECT_EQ(registry_->takeEvents().size(), 2u);
}

// Ensures a restart's registry holds what was stored and publishes none of its old events.
TEST_F(ReservationRegistryTest, RecoverPublishesNothingOld) {
  ReservationRegistry again(*store_);
  ASSERT_TRUE(again.recover().isOk());
  EXPECT_EQ(again.all().size(), 2u);
  EXPECT_TRUE(again.takeEvents().empty());
}

}  // namespace
}  // namespace vrm::manager
