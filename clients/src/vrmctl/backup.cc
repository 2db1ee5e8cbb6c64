// backup: an online backup of vrmd's store, written to a local file and checked.
#include <sqlite3.h>

#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "vrm/client/render.h"

namespace vrm::vrmctl {

namespace {

// Opens the written file as SQLite does when vrmd restores it, and checks it is whole and holds
// the reservations vrmd said it does.
Status verifyBackup(const std::string& path, std::uint32_t reservations) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr);
  std::unique_ptr<sqlite3, int (*)(sqlite3*)> guard(db, sqlite3_close);
  if (rc != SQLITE_OK) return Status::internal("backup '" + path + "' does not open as SQLite");
  auto single = [&](const char* sql) -> std::string {
    sqlite3_stmt* stmt = nullptr;
    std::string value;
    if (sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr) == SQLITE_OK &&
        sqlite3_step(stmt) == SQLITE_ROW) {
      const unsigned char* text = sqlite3_column_text(stmt, 0);
      value = text ? reinterpret_cast<const char*>(text) : "";
    } else {
      value = std::string("error: ") + sqlite3_errmsg(db);
    }
    sqlite3_finalize(stmt);
    return value;
  };
  if (std::string verdict = single("PRAGMA integrity_check"); verdict != "ok") {
    return Status::internal("backup '" + path + "' fails SQLite's integrity check: " + verdict);
  }
  if (std::string count = single("SELECT COUNT(*) FROM reservations");
      count != std::to_string(reservations)) {
    return Status::internal("backup '" + path + "' holds " + count + " reservations, vrmd said " +
                            std::to_string(reservations));
  }
  return Status::ok();
}

}  // namespace

void addBackupCommand(CLI::App& app, Context& ctx) {
  auto* backup = app.add_subcommand(
      "backup",
      "write an online backup of vrmd's store to FILE (admins only)\n"
      "Restore: stop vrmd, put the file in place of its --store file (removing the store's\n"
      "-wal and -shm files), start vrmd (README: Backups).");
  static std::string path;
  backup->add_option("FILE", path, "where to write it (must not exist)")->required();
  backup->callback([&ctx] {
    client::Client client = ctx.makeClient();
    auto info = client.backupTo(path);
    if (!info) {
      ctx.exitCode = ctx.fail(info.status());
      return;
    }
    if (Status s = verifyBackup(path, info->reservations); !s) {
      ctx.exitCode = ctx.fail(s);
      return;
    }
    if (ctx.json) {
      std::cout << nlohmann::json{{"file", path},
                                  {"bytes", info->bytes},
                                  {"reservations", info->reservations},
                                  {"taken_at", formatTime(info->takenAtNs)}}
                       .dump()
                << "\n";
    } else {
      std::cout << "backed up " << info->reservations << " reservations (" << info->bytes
                << " bytes, taken at " << formatTime(info->takenAtNs) << ") to " << path << "\n";
    }
    ctx.exitCode = kExitOk;
  });
}

}  // namespace vrm::vrmctl
