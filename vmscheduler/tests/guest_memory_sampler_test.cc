// The guest memory sampler measures non-zero and modified memory of a mapping from outside the
// process; here the mapping is this test's own, with contents it controls.
#include "qemu/guest_memory_sampler.h"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>

namespace vrm::vmscheduler::qemu {
namespace {

constexpr std::size_t kPage = 4096;

struct Mapping {
  explicit Mapping(std::size_t pages) : size(pages * kPage) {
    data = static_cast<std::uint8_t*>(
        mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  }
  ~Mapping() { munmap(data, size); }
  std::uint64_t start() const { return reinterpret_cast<std::uint64_t>(data); }
  std::uint8_t* data;
  std::size_t size;
};

// Ensures every page is read when the mapping is small: untouched pages and resident zero pages
// are zero, pages with data are not, and a rewrite shows as modified on the next sample.
TEST(GuestMemorySamplerTest, CountsNonzeroAndModifiedPagesExactlyOnSmallMappings) {
  Mapping m(256);
  for (std::size_t p = 0; p < 64; ++p) m.data[p * kPage + 100] = 1;                  // 64 with data
  for (std::size_t p = 64; p < 128; ++p) std::memset(m.data + p * kPage, 0, kPage);  // zeroed
  GuestMemorySampler sampler(4096);
  auto first = sampler.sample(getpid(), m.start(), m.size);
  ASSERT_TRUE(first.isOk()) << first.status().toString();
  EXPECT_EQ(first->sampledPages, 256u);
  EXPECT_EQ(first->nonzeroBytes, 64 * kPage);
  EXPECT_FALSE(first->modifiedBytes.has_value());
  for (std::size_t p = 0; p < 8; ++p) m.data[p * kPage + 7] = 9;  // 8 rewritten
  for (std::size_t p = 200; p < 204; ++p) m.data[p * kPage] = 3;  // 4 newly written
  auto second = sampler.sample(getpid(), m.start(), m.size);
  ASSERT_TRUE(second.isOk());
  EXPECT_EQ(second->nonzeroBytes, 68 * kPage);
  ASSERT_TRUE(second->modifiedBytes.has_value());
  EXPECT_EQ(*second->modifiedBytes, 12 * kPage);
}

// Ensures a sample of a large mapping estimates its non-zero share within a few standard errors.
TEST(GuestMemorySamplerTest, EstimatesLargeMappingsFromASample) {
  Mapping m(65536);  // 256 MiB, a quarter of it with data
  for (std::size_t p = 0; p < 65536; p += 4) m.data[p * kPage] = 1;
  GuestMemorySampler sampler(4096);
  auto s = sampler.sample(getpid(), m.start(), m.size);
  ASSERT_TRUE(s.isOk()) << s.status().toString();
  EXPECT_EQ(s->sampledPages, 4096u);
  EXPECT_NEAR(static_cast<double>(s->nonzeroBytes) / m.size, 0.25, 0.03);
}

// Ensures an unreadable process is an error, not a figure.
TEST(GuestMemorySamplerTest, UnreadableProcessIsUnavailable) {
  GuestMemorySampler sampler;
  auto s = sampler.sample(999999999, 0x10000, 1 << 20);
  EXPECT_EQ(s.status().code(), StatusCode::kUnavailable);
}

// Ensures the workload classes: memory bound by dirty rate (8 MiB/s, or 1 % of memory per
// second for large guests), else CPU bound by half a core, else unclassified.
TEST(GuestMemorySamplerTest, WorkloadClasses) {
  constexpr double kMiB = 1024 * 1024;
  EXPECT_EQ(classifyWorkload(16 * kMiB, 1ull << 30, 0), "memory");
  EXPECT_EQ(classifyWorkload(16 * kMiB, 4ull << 30, 1.0), "cpu");  // 1 % of 4 GiB is 41 MiB/s
  EXPECT_EQ(classifyWorkload(50 * kMiB, 4ull << 30, 0), "memory");
  EXPECT_EQ(classifyWorkload(1 * kMiB, 1ull << 30, 0.6), "cpu");
  EXPECT_EQ(classifyWorkload(1 * kMiB, 1ull << 30, 0.1), "");
}

}  // namespace
}  // namespace vrm::vmscheduler::qemu
