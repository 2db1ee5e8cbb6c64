#include "output_format.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <sstream>

namespace vrm::vrmctl {

using nlohmann::json;

Result<OutputFormat> parseOutputFormat(const std::string& name) {
  static const std::map<std::string, OutputFormat> kNames = {
      {"text", OutputFormat::kText},   {"json", OutputFormat::kJson},
      {"yaml", OutputFormat::kYaml},   {"table", OutputFormat::kTable},
      {"value", OutputFormat::kValue}, {"csv", OutputFormat::kCsv}};
  auto it = kNames.find(name);
  if (it == kNames.end()) {
    return Status::invalid("-f/--format: unknown format '" + name +
                           "' (text, json, yaml, table, value, csv)");
  }
  return it->second;
}

namespace {

// A cell of table, csv and value: strings as they are, nested values as compact JSON.
std::string cellText(const json& v) {
  if (v.is_null()) return "";
  if (v.is_string()) return v.get<std::string>();
  return v.dump();
}

std::string csvField(const std::string& s) {
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

// A string YAML would read as something else is quoted: the YAML 1.1 words for booleans and
// null, and anything starting like a number (numbers, but also timestamps such as
// 2026-12-02T13:41:38Z and sexagesimal 1:20, which YAML 1.1 parsers turn into dates and ints).
bool yamlNeedsQuotes(const std::string& s) {
  if (s.empty()) return true;
  const char c = s[0];
  if ((c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.') return true;
  std::string lower = s;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char x) { return static_cast<char>(std::tolower(x)); });
  for (const char* w : {"true", "false", "yes", "no", "on", "off", "y", "n", "null", "~"}) {
    if (lower == w) return true;
  }
  return false;
}

void emitYaml(YAML::Emitter& out, const json& v) {
  if (v.is_object()) {
    out << YAML::BeginMap;
    for (const auto& [k, x] : v.items()) {
      out << YAML::Key << k << YAML::Value;
      emitYaml(out, x);
    }
    out << YAML::EndMap;
  } else if (v.is_array()) {
    out << YAML::BeginSeq;
    for (const auto& x : v) emitYaml(out, x);
    out << YAML::EndSeq;
  } else if (v.is_string()) {
    const std::string s = v.get<std::string>();
    if (yamlNeedsQuotes(s)) out << YAML::DoubleQuoted;
    out << s;
  } else if (v.is_null()) {
    out << YAML::Null;
  } else if (v.is_boolean()) {
    out << v.get<bool>();
  } else {
    out << v.dump();  // numbers as JSON writes them (YAML reads them back as numbers)
  }
}

std::string tableOf(const std::vector<std::string>& header,
                    const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> width(header.size());
  for (std::size_t c = 0; c < header.size(); ++c) width[c] = header[c].size();
  for (const auto& row : rows) {
    for (std::size_t c = 0; c < row.size(); ++c) width[c] = std::max(width[c], row[c].size());
  }
  std::ostringstream out;
  auto line = [&](const std::vector<std::string>& cells) {
    std::string text;
    for (std::size_t c = 0; c < cells.size(); ++c) {
      text += cells[c];
      if (c + 1 < cells.size()) text += std::string(width[c] - cells[c].size() + 2, ' ');
    }
    out << text << "\n";
  };
  line(header);
  for (const auto& row : rows) line(row);
  return out.str();
}

}  // namespace

Result<std::string> formatOutput(const json& data, OutputFormat format,
                                 const std::vector<std::string>& requested) {
  const bool single = data.is_object();
  const json rows = single ? json::array({data}) : data;
  // Every field any row has, in order: the known columns.
  std::vector<std::string> known;
  for (const json& row : rows) {
    for (const auto& [k, v] : row.items()) {
      if (std::find(known.begin(), known.end(), k) == known.end()) known.push_back(k);
    }
  }
  std::vector<std::string> columns = requested.empty() ? known : requested;
  for (const std::string& c : columns) {
    // With no rows there is nothing to check against (and nothing to print but a header).
    if (rows.empty() || std::find(known.begin(), known.end(), c) != known.end()) continue;
    std::string list;
    for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
    return Status::invalid("-c/--column: unknown column '" + c + "' (columns: " + list + ")");
  }
  // The rows restricted to the columns, in the columns' order for the text formats.
  std::vector<std::vector<std::string>> cells;
  json picked = json::array();
  for (const json& row : rows) {
    json p = json::object();
    std::vector<std::string> line;
    for (const std::string& c : columns) {
      const json v = row.contains(c) ? row.at(c) : json();
      p[c] = v;
      line.push_back(cellText(v));
    }
    picked.push_back(p);
    cells.push_back(line);
  }
  const json& shown = single ? picked.at(0) : picked;
  switch (format) {
    case OutputFormat::kJson:
      return shown.dump(2) + "\n";
    case OutputFormat::kYaml: {
      YAML::Emitter out;
      emitYaml(out, shown);
      return std::string(out.c_str()) + "\n";
    }
    case OutputFormat::kTable: {
      if (!single) return tableOf(columns, cells);
      std::vector<std::vector<std::string>> fields;
      for (std::size_t c = 0; c < columns.size(); ++c) fields.push_back({columns[c], cells[0][c]});
      return tableOf({"Field", "Value"}, fields);
    }
    case OutputFormat::kValue: {
      std::string out;
      for (const auto& line : cells) {
        for (std::size_t c = 0; c < line.size(); ++c) {
          out += line[c] + (c + 1 < line.size() ? (single ? "\n" : " ") : "\n");
        }
      }
      return out;
    }
    case OutputFormat::kCsv: {
      std::string out;
      for (std::size_t c = 0; c < columns.size(); ++c) {
        out += csvField(columns[c]) + (c + 1 < columns.size() ? "," : "\r\n");
      }
      for (const auto& line : cells) {
        for (std::size_t c = 0; c < line.size(); ++c) {
          out += csvField(line[c]) + (c + 1 < line.size() ? "," : "\r\n");
        }
      }
      return out;
    }
    case OutputFormat::kText:
      break;
  }
  return Status::internal("formatOutput: text is each command's own rendering");
}

}  // namespace vrm::vrmctl
