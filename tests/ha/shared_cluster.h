// A GoogleTest fixture whose tests share one etcd cluster (3 members, the harness's defaults),
// started once per test binary: each HA test binary runs as one ctest test, so the cluster
// starts once. Skips when etcd is not installed; restarts before each test any member an
// earlier test left down.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "etcd_cluster.h"

namespace vrm::testing {

class SharedEtcdClusterTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (cluster_ != nullptr || startError_ != nullptr) return;
    auto cluster = EtcdCluster::start(EtcdClusterOptions{});
    if (cluster.isOk()) {
      cluster_ = cluster->release();
    } else {
      startError_ = new Status(cluster.status());
    }
  }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }
  // Derived fixtures call this first and return if it skipped or failed.
  void SetUp() override {
    if (cluster_ == nullptr) {
      if (startError_->code() == StatusCode::kNotFound) GTEST_SKIP() << startError_->toString();
      FAIL() << startError_->toString();
    }
    for (int i = 0; i < cluster_->size(); ++i) {
      if (!cluster_->running(i)) {
        ASSERT_TRUE(cluster_->restart(i).isOk());
      }
    }
  }
  bool ready() const { return !IsSkipped() && !HasFatalFailure(); }
  // The running test's name: a key prefix no other test uses.
  static std::string testName() {
    return ::testing::UnitTest::GetInstance()->current_test_info()->name();
  }

  inline static EtcdCluster* cluster_ = nullptr;
  inline static Status* startError_ = nullptr;
};

}  // namespace vrm::testing
