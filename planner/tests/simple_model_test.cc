#include <gtest/gtest.h>

#include "vrm/planner/migration_model.h"

namespace vrm::planner {
namespace {

// Ensures the simple rule is pre + nonzero/bandwidth + post with the VM down throughout.
TEST(SimpleModelTest, BytesOverBandwidth) {
  auto model = createMigrationModel("simple");
  ASSERT_TRUE(model.isOk());
  VmProfile vm;
  vm.memoryBytes = 1e9;
  vm.nonzeroMemoryBytes = 5e8;
  LinkProfile link{1e8, 1.0, 0.5};
  auto e = (*model)->estimate(vm, link);
  ASSERT_TRUE(e.isOk());
  EXPECT_DOUBLE_EQ(e->totalTimeS, 6.5);
  EXPECT_DOUBLE_EQ(e->downtimeS, 6.5);
  EXPECT_DOUBLE_EQ(e->transferredBytes, 5e8);
}

// Ensures impossible profiles and unknown names are typed errors.
TEST(SimpleModelTest, BadInput) {
  auto model = createMigrationModel("simple");
  VmProfile vm;
  vm.memoryBytes = 1e9;
  EXPECT_EQ((*model)->estimate(vm, LinkProfile{0, 0, 0}).status().code(),
            StatusCode::kInvalidArgument);
  vm.memoryBytes = -1;
  EXPECT_FALSE((*model)->estimate(vm, LinkProfile{1e8, 0, 0}).isOk());
  auto missing = createMigrationModel("no-such-model");
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("simple"), std::string::npos);
  EXPECT_FALSE(createMigrationModel("simple", {{"typo", 1.0}}).isOk());
}

}  // namespace
}  // namespace vrm::planner
