// The table of migration models createMigrationModel() knows. One line per model.
#include <algorithm>
#include <functional>

#include "models.h"
#include "vrm/planner/migration_model.h"

namespace vrm::planner {
namespace {

using Factory = std::function<Result<std::unique_ptr<MigrationModel>>(const ModelParameters&)>;

struct Entry {
  const char* name;
  Factory create;
};

const std::vector<Entry>& registry() {
  static const std::vector<Entry> kModels = {
      {"simple", makeSimpleModel},
      {"zhao-scr", makeZhaoScrModel},
      {"liu-base", makeLiuBaseModel},
      {"liu-refined", makeLiuRefinedModel},
      {"qemu-precopy", makeQemuPrecopyModel},
      {"qemu-scr", makeQemuScrModel},
      {"akoush-bounds", makeAkoushBoundsModel},
      {"akoush-avg", makeAkoushAvgModel},
      {"akoush-hist", makeAkoushHistModel},
      {"tsakalozos-disk", makeTsakalozosDiskModel},
      // MODEL-REGISTRY: add one line per model above this comment.
  };
  return kModels;
}

}  // namespace

Result<std::unique_ptr<MigrationModel>> createMigrationModel(std::string_view name,
                                                             const ModelParameters& params) {
  for (const Entry& e : registry()) {
    if (name == e.name) return e.create(params);
  }
  std::string known;
  for (const Entry& e : registry()) known += (known.empty() ? "" : ", ") + std::string(e.name);
  return Status::notFound("unknown migration model '" + std::string(name) + "' (known: " + known +
                          ")");
}

std::vector<std::string> migrationModelNames() {
  std::vector<std::string> names;
  for (const Entry& e : registry()) names.emplace_back(e.name);
  return names;
}

}  // namespace vrm::planner
