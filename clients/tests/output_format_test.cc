#include "output_format.h"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

namespace vrm::vrmctl {
namespace {

using nlohmann::json;

const json kRows = json::parse(R"([
  {"id": "r1", "state": "admitted", "hosts": 1, "label": "BMI, closed loop", "plan": {"moves": 2},
   "reason": null},
  {"id": "r2", "state": "done", "hosts": 2, "label": "say \"hi\"", "plan": {"moves": 0},
   "reason": "123"}
])");

std::string out(const json& data, OutputFormat f, std::vector<std::string> columns = {}) {
  auto r = formatOutput(data, f, columns);
  EXPECT_TRUE(r.isOk()) << r.status().toString();
  return r.isOk() ? *r : "";
}

// Ensures json keeps the data and -c picks fields.
TEST(OutputFormatTest, JsonPicksColumns) {
  EXPECT_EQ(json::parse(out(kRows, OutputFormat::kJson)), kRows);
  EXPECT_EQ(json::parse(out(kRows, OutputFormat::kJson, {"state", "id"})),
            json::parse(R"([{"id":"r1","state":"admitted"},{"id":"r2","state":"done"}])"));
  EXPECT_EQ(json::parse(out(kRows[0], OutputFormat::kJson, {"id"})), json({{"id", "r1"}}));
}

// Ensures a YAML parser reads back what json holds, strings that look like numbers or null
// staying strings.
TEST(OutputFormatTest, YamlReadsBackAsTheSameData) {
  YAML::Node doc = YAML::Load(out(kRows, OutputFormat::kYaml));
  ASSERT_TRUE(doc.IsSequence());
  ASSERT_EQ(doc.size(), 2u);
  EXPECT_EQ(doc[0]["label"].as<std::string>(), "BMI, closed loop");
  EXPECT_EQ(doc[0]["hosts"].as<int>(), 1);
  EXPECT_EQ(doc[0]["plan"]["moves"].as<int>(), 2);
  EXPECT_TRUE(doc[0]["reason"].IsNull());
  EXPECT_EQ(doc[1]["label"].as<std::string>(), "say \"hi\"");
  EXPECT_EQ(doc[1]["reason"].Tag(), "!");  // quoted: a string, not the number 123
  EXPECT_EQ(doc[1]["reason"].as<std::string>(), "123");
  YAML::Node one = YAML::Load(out(kRows[1], OutputFormat::kYaml, {"id", "state"}));
  ASSERT_TRUE(one.IsMap());
  EXPECT_EQ(one["state"].as<std::string>(), "done");
}

// Ensures csv quotes what needs quoting (RFC 4180) in the columns' order.
TEST(OutputFormatTest, CsvQuotesFields) {
  EXPECT_EQ(out(kRows, OutputFormat::kCsv, {"id", "label", "plan", "reason"}),
            "id,label,plan,reason\r\n"
            "r1,\"BMI, closed loop\",\"{\"\"moves\"\":2}\",\r\n"
            "r2,\"say \"\"hi\"\"\",\"{\"\"moves\"\":0}\",123\r\n");
}

// Ensures value prints bare values: one row per line, or one value per line for one object.
TEST(OutputFormatTest, ValueIsBare) {
  EXPECT_EQ(out(kRows, OutputFormat::kValue, {"id", "state"}), "r1 admitted\nr2 done\n");
  EXPECT_EQ(out(kRows, OutputFormat::kValue, {"id"}), "r1\nr2\n");
  EXPECT_EQ(out(kRows[0], OutputFormat::kValue, {"id", "state"}), "r1\nadmitted\n");
}

// Ensures table aligns columns under a header, and shows one object as Field/Value.
TEST(OutputFormatTest, TableAligns) {
  EXPECT_EQ(out(kRows, OutputFormat::kTable, {"id", "state", "hosts"}),
            "id  state     hosts\n"
            "r1  admitted  1\n"
            "r2  done      2\n");
  EXPECT_EQ(out(kRows[0], OutputFormat::kTable, {"id", "state"}),
            "Field  Value\n"
            "id     r1\n"
            "state  admitted\n");
}

// Ensures an unknown column is refused naming it and the known ones; an empty listing is not.
TEST(OutputFormatTest, UnknownColumnIsBadInput) {
  auto r = formatOutput(kRows, OutputFormat::kCsv, {"id", "colour"});
  ASSERT_FALSE(r.isOk());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("unknown column 'colour'"), std::string::npos);
  EXPECT_NE(r.status().message().find("hosts, id, label"), std::string::npos)
      << r.status().message();
  EXPECT_EQ(out(json::array(), OutputFormat::kValue, {"id"}), "");
  EXPECT_EQ(out(json::array(), OutputFormat::kCsv, {"id"}), "id\r\n");
}

// Ensures format names are checked at the edge.
TEST(OutputFormatTest, FormatNames) {
  EXPECT_EQ(*parseOutputFormat("yaml"), OutputFormat::kYaml);
  auto bad = parseOutputFormat("xml");
  ASSERT_FALSE(bad.isOk());
  EXPECT_NE(bad.status().message().find("'xml'"), std::string::npos);
}

}  // namespace
}  // namespace vrm::vrmctl
