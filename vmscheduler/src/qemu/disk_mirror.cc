#include "qemu/disk_mirror.h"

#include <algorithm>

#include "qemu/qemu_support.h"

namespace vrm::vmscheduler::qemu {

namespace {

Status failed(const std::string& what, const Status& s) {
  return Status::internal(what + ": " + s.message());
}

// The guest's write cap on its data disk; 0 lifts it.
Status throttleWrites(QmpClient& qmp, double bytesPerSec) {
  const auto bps = static_cast<std::int64_t>(std::max(0.0, bytesPerSec));
  auto r = qmp.execute("block_set_io_throttle",
                       {{"device", kDataDiskDevice},
                        {"bps", 0},
                        {"bps_rd", 0},
                        {"bps_wr", bps},
                        {"iops", 0},
                        {"iops_rd", 0},
                        {"iops_wr", 0}},
                       kQmpTimeout);
  if (!r) return failed("block_set_io_throttle bps_wr=" + std::to_string(bps), r.status());
  return Status::ok();
}

}  // namespace

Status startDiskExport(QmpClient& qmp, const std::string& address, int port) {
  auto blocks = qmp.execute("query-block", {}, kQmpTimeout);
  if (!blocks) return failed("query-block", blocks.status());
  std::string node;
  for (const auto& b : *blocks) {
    if (b.value("device", "") == kDataDiskDevice && b.contains("inserted")) {
      node = b["inserted"].value("node-name", "");
    }
  }
  if (node.empty()) return Status::internal(std::string("no data disk ") + kDataDiskDevice);
  if (auto r = qmp.execute(
          "nbd-server-start",
          {{"addr",
            {{"type", "inet"}, {"data", {{"host", address}, {"port", std::to_string(port)}}}}}},
          kQmpTimeout);
      !r) {
    return failed("nbd-server-start on " + address + ":" + std::to_string(port), r.status());
  }
  if (auto r = qmp.execute("block-export-add",
                           {{"type", "nbd"},
                            {"id", kDiskExportName},
                            {"node-name", node},
                            {"name", kDiskExportName},
                            {"writable", true}},
                           kQmpTimeout);
      !r) {
    (void)qmp.execute("nbd-server-stop", {}, kQmpTimeout);
    return failed("block-export-add of " + node, r.status());
  }
  return Status::ok();
}

Status stopDiskExport(QmpClient& qmp) {
  if (auto r = qmp.execute("nbd-server-stop", {}, kQmpTimeout); !r) {
    return failed("nbd-server-stop", r.status());
  }
  return Status::ok();
}

Result<DiskMirror> DiskMirror::start(QmpClient& qmp, const std::string& host, int port,
                                     double speedBytesPerSec, double writeLimitBytesPerSec) {
  const std::string where = host + ":" + std::to_string(port);
  if (auto r = qmp.execute(
          "blockdev-add",
          {{"driver", "nbd"},
           {"node-name", kTargetNode},
           {"server", {{"type", "inet"}, {"host", host}, {"port", std::to_string(port)}}},
           {"export", kDiskExportName}},
          kQmpTimeout);
      !r) {
    return failed("blockdev-add of the destination's disk at nbd " + where, r.status());
  }
  DiskMirror mirror(writeLimitBytesPerSec > 0);
  if (mirror.writeCapped_) {
    if (Status s = throttleWrites(qmp, writeLimitBytesPerSec); !s) {
      (void)qmp.execute("blockdev-del", {{"node-name", kTargetNode}}, kQmpTimeout);
      return s;
    }
  }
  // auto-dismiss off: the concluded job stays listed with its error until release().
  if (auto r = qmp.execute("blockdev-mirror",
                           {{"job-id", kJobId},
                            {"device", kDataDiskDevice},
                            {"target", kTargetNode},
                            {"sync", "full"},
                            {"speed", static_cast<std::int64_t>(std::max(0.0, speedBytesPerSec))},
                            {"auto-dismiss", false}},
                           kQmpTimeout);
      !r) {
    if (mirror.writeCapped_) (void)throttleWrites(qmp, 0);
    (void)qmp.execute("blockdev-del", {{"node-name", kTargetNode}}, kQmpTimeout);
    return failed("blockdev-mirror to nbd " + where, r.status());
  }
  return mirror;
}

std::optional<DiskMirror::Progress> DiskMirror::poll(QmpClient& qmp) {
  auto jobs = qmp.execute("query-jobs", {}, kQmpTimeout);
  if (!jobs) return std::nullopt;
  Progress p;
  for (const auto& j : *jobs) {
    if (j.value("id", "") != kJobId) continue;
    p.copiedBytes = static_cast<std::uint64_t>(jsonNumber(j, "current-progress"));
    p.totalBytes = static_cast<std::uint64_t>(jsonNumber(j, "total-progress"));
    const std::string status = j.value("status", "");
    if (status == "concluded" || status == "null") {
      p.error = j.value("error", "");
      p.state = p.error.empty() ? State::kCompleted : State::kFailed;
    } else if (completing_) {
      p.state = State::kCompleting;
    } else if (status == "ready") {
      p.state = State::kReady;
    }
    return p;
  }
  p.state = State::kFailed;
  p.error = "the mirror job is gone";
  return p;
}

Status DiskMirror::setSpeed(QmpClient& qmp, double bytesPerSec) {
  auto r = qmp.execute(
      "block-job-set-speed",
      {{"device", kJobId}, {"speed", static_cast<std::int64_t>(std::max(0.0, bytesPerSec))}},
      kQmpTimeout);
  if (!r) return failed("block-job-set-speed", r.status());
  return Status::ok();
}

Status DiskMirror::complete(QmpClient& qmp) {
  // Cancelling a ready mirror is its documented ending without a pivot: the job copies what is
  // still dirty and concludes without error; the source keeps its disk.
  auto r = qmp.execute("block-job-cancel", {{"device", kJobId}}, kQmpTimeout);
  if (!r) return failed("block-job-cancel", r.status());
  completing_ = true;
  return Status::ok();
}

void DiskMirror::abort(QmpClient& qmp) {
  if (released_) return;
  (void)qmp.execute("block-job-cancel", {{"device", kJobId}, {"force", true}}, kQmpTimeout);
  // The forced cancel ends the job at once, but it concludes asynchronously: a few tries.
  for (int i = 0; i < 50; ++i) {
    auto p = poll(qmp);
    if (p && (p->state == State::kCompleted || p->state == State::kFailed)) break;
  }
  release(qmp);
}

void DiskMirror::release(QmpClient& qmp) {
  if (released_) return;
  released_ = true;
  (void)qmp.execute("job-dismiss", {{"id", kJobId}}, kQmpTimeout);
  (void)qmp.execute("blockdev-del", {{"node-name", kTargetNode}}, kQmpTimeout);
  if (writeCapped_) (void)throttleWrites(qmp, 0);
}

}  // namespace vrm::vmscheduler::qemu
