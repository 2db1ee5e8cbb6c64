// Internal: factories of the models listed in model_registry.cc, and shared helpers.
#pragma once

#include <memory>
#include <string>

#include "vrm/planner/migration_model.h"

namespace vrm::planner {

// Overlays `given` on `defaults`; an unknown key is invalid-argument naming the model and the
// keys it accepts.
Result<ModelParameters> mergeParameters(std::string_view model, const ModelParameters& defaults,
                                        const ModelParameters& given);

Result<std::unique_ptr<MigrationModel>> makeSimpleModel(const ModelParameters& params);
Result<std::unique_ptr<MigrationModel>> makeZhaoScrModel(const ModelParameters& params);
Result<std::unique_ptr<MigrationModel>> makeLiuBaseModel(const ModelParameters& params);
Result<std::unique_ptr<MigrationModel>> makeLiuRefinedModel(const ModelParameters& params);
Result<std::unique_ptr<MigrationModel>> makeQemuPrecopyModel(const ModelParameters& params);
Result<std::unique_ptr<MigrationModel>> makeQemuScrModel(const ModelParameters& params);
Result<std::unique_ptr<MigrationModel>> makeAkoushBoundsModel(const ModelParameters& params);
Result<std::unique_ptr<MigrationModel>> makeAkoushAvgModel(const ModelParameters& params);
Result<std::unique_ptr<MigrationModel>> makeAkoushHistModel(const ModelParameters& params);
Result<std::unique_ptr<MigrationModel>> makeTsakalozosDiskModel(const ModelParameters& params);
// MODEL-FACTORIES: declare one factory per model above this comment.

}  // namespace vrm::planner
