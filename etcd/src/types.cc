#include "vrm/etcd/types.h"

namespace vrm::etcd {

std::string prefixEnd(const std::string& prefix) {
  std::string end = prefix;
  while (!end.empty()) {
    const auto last = static_cast<unsigned char>(end.back());
    if (last < 0xff) {
      end.back() = static_cast<char>(last + 1);
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');  // no key is greater than every key with this prefix: all keys
}

RangeRequest RangeRequest::single(std::string key) {
  RangeRequest r;
  r.key = std::move(key);
  return r;
}

RangeRequest RangeRequest::prefix(const std::string& prefix) {
  RangeRequest r;
  r.key = prefix.empty() ? std::string(1, '\0') : prefix;
  r.rangeEnd = prefixEnd(prefix);
  return r;
}

namespace {
Compare make(Compare::Target target, std::string key, Compare::Op op, std::int64_t number) {
  Compare c;
  c.target = target;
  c.op = op;
  c.key = std::move(key);
  c.number = number;
  return c;
}
}  // namespace

Compare Compare::createRevision(std::string key, Op op, std::int64_t revision) {
  return make(Target::kCreateRevision, std::move(key), op, revision);
}

Compare Compare::modRevision(std::string key, Op op, std::int64_t revision) {
  return make(Target::kModRevision, std::move(key), op, revision);
}

Compare Compare::version(std::string key, Op op, std::int64_t version) {
  return make(Target::kVersion, std::move(key), op, version);
}

Compare Compare::valueIs(std::string key, Op op, std::string value) {
  Compare c = make(Target::kValue, std::move(key), op, 0);
  c.value = std::move(value);
  return c;
}

Compare Compare::lease(std::string key, Op op, std::int64_t leaseId) {
  return make(Target::kLease, std::move(key), op, leaseId);
}

}  // namespace vrm::etcd
