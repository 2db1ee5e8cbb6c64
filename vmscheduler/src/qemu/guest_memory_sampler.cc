// GuestMemorySampler: contract in guest_memory_sampler.h.
#include "qemu/guest_memory_sampler.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <random>
#include <string>

namespace vrm::vmscheduler::qemu {
namespace {

constexpr std::uint64_t kPage = 4096;
constexpr std::uint64_t kPresent = 1ull << 63;
constexpr std::uint64_t kSwapped = 1ull << 62;
constexpr std::uint64_t kSwappedHash = 1;  // a swapped page: counted non-zero, content unknown

class Fd {
 public:
  explicit Fd(const std::string& path) : fd_(::open(path.c_str(), O_RDONLY | O_CLOEXEC)) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

// FNV-1a over 64-bit words; never 0 or kSwappedHash for a non-zero page's content.
std::uint64_t hashPage(const std::uint64_t* words) {
  std::uint64_t h = 1469598103934665603ull;
  for (std::size_t i = 0; i < kPage / 8; ++i) h = (h ^ words[i]) * 1099511628211ull;
  return h < 2 ? h + 2 : h;
}

}  // namespace

std::string classifyWorkload(double dirtyRateBytesPerSec, std::uint64_t memoryBytes,
                             double cpuCoresBusy) {
  const double memoryBound = std::max(8.0 * 1024 * 1024, 0.01 * static_cast<double>(memoryBytes));
  if (dirtyRateBytesPerSec >= memoryBound) return "memory";
  if (cpuCoresBusy >= 0.5) return "cpu";
  return "";
}

GuestMemorySampler::GuestMemorySampler(std::size_t pages, std::uint64_t seed)
    : pages_(std::max<std::size_t>(pages, 1)), seed_(seed) {}

Result<GuestMemorySample> GuestMemorySampler::sample(pid_t pid, std::uint64_t start,
                                                     std::uint64_t size) {
  const std::uint64_t mappingPages = size / kPage;
  if (mappingPages == 0) return Status::invalid("empty guest memory mapping");
  if (pid != pid_ || start != start_ || size != size_) {
    pid_ = pid, start_ = start, size_ = size;
    offsets_.clear();
    hashes_.clear();
    std::mt19937_64 rng(seed_);
    if (mappingPages <= pages_) {
      for (std::uint64_t p = 0; p < mappingPages; ++p) offsets_.push_back(p);
    } else {
      std::uniform_int_distribution<std::uint64_t> pick(0, mappingPages - 1);
      for (std::size_t i = 0; i < pages_; ++i) offsets_.push_back(pick(rng));
    }
  }
  const std::string proc = "/proc/" + std::to_string(pid);
  Fd pagemap(proc + "/pagemap");
  Fd mem(proc + "/mem");
  if (pagemap.get() < 0 || mem.get() < 0) {
    return Status::unavailable("cannot read " + proc + (pagemap.get() < 0 ? "/pagemap" : "/mem") +
                               ": " + std::strerror(errno));
  }
  std::array<std::uint64_t, kPage / 8> buffer{};
  std::vector<std::uint64_t> hashes(offsets_.size(), 0);
  std::size_t nonzero = 0;
  for (std::size_t i = 0; i < offsets_.size(); ++i) {
    const std::uint64_t address = start + offsets_[i] * kPage;
    std::uint64_t entry = 0;
    if (::pread(pagemap.get(), &entry, sizeof entry,
                static_cast<off_t>(address / kPage * sizeof entry)) != sizeof entry) {
      return Status::unavailable("cannot read " + proc + "/pagemap: " + std::strerror(errno));
    }
    if (entry & kSwapped) {
      hashes[i] = kSwappedHash;
      ++nonzero;
      continue;
    }
    if (!(entry & kPresent)) continue;  // never touched: a zero page
    if (::pread(mem.get(), buffer.data(), kPage, static_cast<off_t>(address)) !=
        static_cast<ssize_t>(kPage)) {
      continue;  // unmapped meanwhile (the QEMU is exiting): not counted
    }
    if (std::all_of(buffer.begin(), buffer.end(), [](std::uint64_t w) { return w == 0; })) continue;
    hashes[i] = hashPage(buffer.data());
    ++nonzero;
  }
  GuestMemorySample s;
  s.sampledPages = offsets_.size();
  s.nonzeroBytes =
      static_cast<std::uint64_t>(static_cast<double>(size) * static_cast<double>(nonzero) /
                                 static_cast<double>(offsets_.size()));
  if (!hashes_.empty()) {
    std::size_t changed = 0;
    for (std::size_t i = 0; i < hashes.size(); ++i) {
      changed += hashes[i] != hashes_[i] || hashes[i] == kSwappedHash;
    }
    s.modifiedBytes =
        static_cast<std::uint64_t>(static_cast<double>(size) * static_cast<double>(changed) /
                                   static_cast<double>(hashes.size()));
  }
  hashes_ = std::move(hashes);
  return s;
}

}  // namespace vrm::vmscheduler::qemu
