// vrmctl's output formats for scripts (-f json|yaml|table|value|csv, -c COLUMN), the way Slurm's
// and the OpenStack CLI's users expect them. The data is the command's JSON (README "JSON
// output": its field names are the column names, a contract); the default, `text`, is the
// human-oriented rendering each command has of its own and is not handled here.
//
//  * A listing is a JSON array of objects, one row each; `show` gives one object.
//  * json / yaml: the objects (only the chosen columns with -c), arrays for listings.
//  * table: aligned columns with a header of column names; for one object, Field/Value lines.
//  * csv: RFC 4180 (header row, fields quoted when they hold a comma, quote or line break).
//  * value: the values only, space separated, one row per line (one value per line for one
//    object): for `for x in $(vrmctl list -f value -c id)`.
//  * In table, csv and value, a nested value (plan, handles, events) is its compact JSON and
//    null is empty.
//  * Columns default to every field of the rows, in the JSON's order (alphabetical); a column
//    no row has is an error listing the known ones.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "vrm/protocol/status.h"

namespace vrm::vrmctl {

enum class OutputFormat { kText, kJson, kYaml, kTable, kValue, kCsv };

// "text", "json", "yaml", "table", "value", "csv"; invalid-argument naming -f otherwise.
Result<OutputFormat> parseOutputFormat(const std::string& name);

// `data` (an array of objects, or one object) in `format` (not kText), restricted to `columns`
// when not empty. Ends with a newline. Invalid-argument for an unknown column.
Result<std::string> formatOutput(const nlohmann::json& data, OutputFormat format,
                                 const std::vector<std::string>& columns);

}  // namespace vrm::vrmctl
