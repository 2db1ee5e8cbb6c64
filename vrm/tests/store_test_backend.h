// The Store contract tests (store_test.cc) run against every implementation: a StoreBackend
// opens the implementation at one location per test, and reopens it there (a restart).
// vrm_test instantiates them on SQLite (store_test.cc); ha_store_test (tests/ha, label ha)
// compiles the same file with VRM_STORE_TEST_ETCD and instantiates them on a real etcd cluster.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <ostream>
#include <string>

#include "vrm/manager/store.h"

namespace vrm::manager::testing {

class StoreBackend {
 public:
  virtual ~StoreBackend() = default;
  // Opens the store at this test's location: the same state on every call (a restart), once
  // the store opened before is destroyed.
  virtual Result<std::unique_ptr<Store>> open() = 0;
};

// Makes the backend of one test (`test` names its location); a not-found Status skips the
// test (etcd not installed).
struct StoreBackendFactory {
  std::string name;
  std::function<Result<std::unique_ptr<StoreBackend>>(const std::string& test)> make;
};

// gtest prints a parameter that fails a test: the backend's name, not its bytes.
inline void PrintTo(const StoreBackendFactory& factory, std::ostream* out) { *out << factory.name; }

inline std::string storeBackendName(const ::testing::TestParamInfo<StoreBackendFactory>& info) {
  return info.param.name;
}

class StoreContractTest : public ::testing::TestWithParam<StoreBackendFactory> {
 protected:
  void SetUp() override {
    auto backend = GetParam().make(testName());
    if (!backend) {
      if (backend.status().code() == StatusCode::kNotFound) {
        GTEST_SKIP() << backend.status().toString();
      }
      FAIL() << backend.status().toString();
    }
    backend_ = std::move(*backend);
  }
  void TearDown() override { backend_.reset(); }

  // The running test's name as one path or key segment ("Name-Sqlite").
  static std::string testName() {
    std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    for (char& c : name) {
      if (c == '/') c = '-';
    }
    return name;
  }

  // Opens the store (ASSERTs in the caller: check for null).
  std::unique_ptr<Store> open() {
    auto store = backend_->open();
    EXPECT_TRUE(store.isOk()) << store.status().toString();
    return store ? std::move(*store) : nullptr;
  }

  std::unique_ptr<StoreBackend> backend_;
};

}  // namespace vrm::manager::testing
