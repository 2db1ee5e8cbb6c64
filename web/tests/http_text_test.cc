// The HTTP edge's text helpers: what a URL path segment is escaped to and read back as, and
// the errors a malformed escape gets.
#include "http_text.h"

#include <gtest/gtest.h>

namespace vrm::web {
namespace {

TEST(HttpTextTest, PercentEncodeKeepsOnlyUnreservedCharacters) {
  EXPECT_EQ(percentEncode("r-1.a_b~Z9"), "r-1.a_b~Z9");
  EXPECT_EQ(percentEncode("a b/c?d#e%f"), "a%20b%2Fc%3Fd%23e%25f");
  EXPECT_EQ(percentEncode("Zo\xC3\xAB"), "Zo%C3%AB");  // UTF-8 bytes, upper-case hex
  EXPECT_EQ(percentEncode(std::string_view("\0\xFF", 2)), "%00%FF");
  EXPECT_EQ(percentEncode(""), "");
}

TEST(HttpTextTest, PercentEncodedTextDecodesToItself) {
  std::string every;
  for (int c = 0; c < 256; ++c) every += static_cast<char>(c);
  EXPECT_EQ(percentDecode(percentEncode(every), /*plusIsSpace=*/false), every);
  EXPECT_EQ(percentDecode(percentEncode("a+b"), /*plusIsSpace=*/true), "a+b");
}

TEST(HttpTextTest, MalformedEscapesAreBadRequests) {
  EXPECT_THROW(percentDecode("%", false), BadRequest);
  EXPECT_THROW(percentDecode("%4", false), BadRequest);
  EXPECT_THROW(percentDecode("%G0", false), BadRequest);
}

}  // namespace
}  // namespace vrm::web
