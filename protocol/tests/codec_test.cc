#include "vrm/protocol/codec.h"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "schema/vrm.capnp.h"

namespace vrm::protocol {
namespace {

zmq::message_t sampleSubmit() {
  capnp::MallocMessageBuilder b;
  auto req = b.initRoot<wire::ClientRequest>();
  req.setRequestId(42);
  auto s = req.initSubmit();
  s.setOwner("lab-bmi");
  s.setHostCount(2);
  s.setStartNs(1000);
  s.setEndNs(2000);
  s.setTemplate("bmi-decoder");
  return encodeFrame(b);
}

// Ensures a message survives encode/decode with every field intact.
TEST(CodecTest, RoundTrip) {
  auto frame = decodeFrame(sampleSubmit());
  ASSERT_TRUE(frame.isOk()) << frame.status().toString();
  auto root = frame->root<wire::ClientRequest>();
  ASSERT_TRUE(root.isOk());
  EXPECT_EQ(root->getRequestId(), 42u);
  ASSERT_TRUE(root->isSubmit());
  EXPECT_EQ(toStd(root->getSubmit().getOwner()), "lab-bmi");
  EXPECT_EQ(root->getSubmit().getHostCount(), 2u);
  EXPECT_EQ(toStd(root->getSubmit().getTemplate()), "bmi-decoder");
}

// Ensures frames whose bytes are not 8-byte aligned are copied and decoded correctly.
TEST(CodecTest, MisalignedFrameIsCopied) {
  zmq::message_t msg = sampleSubmit();
  std::vector<char> buf(msg.size() + 1);
  std::memcpy(buf.data() + 1, msg.data(), msg.size());
  auto frame = decodeFrame(buf.data() + 1, msg.size());
  ASSERT_TRUE(frame.isOk()) << frame.status().toString();
  auto root = frame->root<wire::ClientRequest>();
  ASSERT_TRUE(root.isOk());
  EXPECT_EQ(root->getRequestId(), 42u);
}

// Ensures a cut-off frame is an invalid-argument error, at every cut point.
TEST(CodecTest, TruncatedFrameIsRejected) {
  zmq::message_t msg = sampleSubmit();
  for (std::size_t cut = 0; cut < msg.size(); ++cut) {
    auto frame = decodeFrame(msg.data(), cut);
    if (!frame.isOk()) {
      EXPECT_EQ(frame.status().code(), StatusCode::kInvalidArgument);
      continue;
    }
    // Word-aligned prefixes may parse a segment table; reading the root must then fail.
    auto root = frame->root<wire::ClientRequest>();
    EXPECT_FALSE(root.isOk()) << "cut at " << cut;
  }
}

// Ensures random bytes never crash the decoder and yield a typed error or a readable message.
TEST(CodecTest, GarbageFrameIsRejected) {
  std::uint64_t state = 0x9E3779B97F4A7C15ull;
  int rejected = 0;
  for (int trial = 0; trial < 2000; ++trial) {
    std::vector<unsigned char> bytes(8 * (1 + trial % 32));
    for (auto& b : bytes) {
      state ^= state << 13;
      state ^= state >> 7;
      state ^= state << 17;
      b = static_cast<unsigned char>(state);
    }
    auto frame = decodeFrame(bytes.data(), bytes.size());
    if (!frame.isOk()) {
      ++rejected;
      EXPECT_EQ(frame.status().code(), StatusCode::kInvalidArgument);
      continue;
    }
    auto root = frame->root<wire::ClientRequest>();
    if (!root.isOk()) ++rejected;
  }
  EXPECT_GT(rejected, 1900);
  std::string text = "GET / HTTP/1.1\r\n\r\n";
  EXPECT_FALSE(decodeFrame(text.data(), text.size()).isOk());
}

// Ensures frames above the configured limit are refused before parsing.
TEST(CodecTest, OversizedFrameIsRejected) {
  zmq::message_t msg = sampleSubmit();
  DecodeLimits limits;
  limits.maxFrameBytes = msg.size() - 8;
  auto frame = decodeFrame(msg.data(), msg.size(), limits);
  ASSERT_FALSE(frame.isOk());
  EXPECT_EQ(frame.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(frame.status().message().find("exceeds"), std::string::npos);
}

// Ensures the traversal limit stops a message that points at far more data than allowed.
TEST(CodecTest, TraversalLimitIsEnforced) {
  capnp::MallocMessageBuilder b;
  auto list = b.initRoot<wire::ClientReply>().initVms(2000);
  for (auto vm : list) vm.setId("a-fairly-long-vm-identifier-to-take-space");
  zmq::message_t msg = encodeFrame(b);
  DecodeLimits limits;
  limits.traversalLimitWords = 64;
  auto frame = decodeFrame(std::move(msg), limits);
  ASSERT_TRUE(frame.isOk());
  EXPECT_FALSE(frame->root<wire::ClientReply>().isOk());
}

// Ensures a pointer of the wrong kind is caught by root<T>(), not thrown later by a reader: a
// ClientRequest "get" frame read as a ClientReply has text where a Reservation struct belongs
// (found by fuzz_frame; bounds and depth alone let it through).
TEST(CodecTest, PointerOfTheWrongKindIsRejected) {
  capnp::MallocMessageBuilder b;
  auto req = b.initRoot<wire::ClientRequest>();
  req.setRequestId(6);
  req.setGet("r1");
  zmq::message_t msg = encodeFrame(b);
  auto frame = decodeFrame(msg.data(), msg.size());
  ASSERT_TRUE(frame.isOk());
  EXPECT_TRUE(frame->root<wire::ClientRequest>().isOk());
  auto reply = frame->root<wire::ClientReply>();
  ASSERT_FALSE(reply.isOk());
  EXPECT_EQ(reply.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(reply.status().message().find("malformed message"), std::string::npos);
}

// Ensures text without its NUL terminator is caught by root<T>() too.
TEST(CodecTest, UnterminatedTextIsRejected) {
  capnp::MallocMessageBuilder b;
  b.initRoot<wire::ClientRequest>().setGet("abcdefg");  // 7 bytes + NUL: one word
  kj::Array<capnp::word> words = capnp::messageToFlatArray(b);
  auto bytes = words.asBytes();
  ASSERT_EQ(bytes[bytes.size() - 1], 0);
  bytes[bytes.size() - 1] = 'h';  // the NUL becomes a character
  auto frame = decodeFrame(bytes.begin(), bytes.size());
  ASSERT_TRUE(frame.isOk());
  EXPECT_FALSE(frame->root<wire::ClientRequest>().isOk());
}

// Ensures checking a message in root<T>() does not spend the budget of the caller's reads: a
// message that costs most of the traversal limit passes and can then be read in full (found by
// fuzz_frame: the check and the first read together exceeded the limit, and the read threw).
TEST(CodecTest, CheckingDoesNotSpendTheCallersTraversalBudget) {
  capnp::MallocMessageBuilder b;
  auto list = b.initRoot<wire::ClientReply>().initVms(200);
  for (auto vm : list) vm.setId("a-fairly-long-vm-identifier-to-take-space");
  zmq::message_t msg = encodeFrame(b);
  DecodeLimits limits;
  limits.traversalLimitWords = msg.size() / 8 + 8;  // one read of the message, not two
  auto frame = decodeFrame(std::move(msg), limits);
  ASSERT_TRUE(frame.isOk());
  auto root = frame->root<wire::ClientReply>();
  ASSERT_TRUE(root.isOk()) << root.status().toString();
  std::size_t ids = 0;
  for (auto vm : root->getVms()) ids += vm.getId().size();
  EXPECT_EQ(ids, 200u * 41);
}

// Ensures a tiny frame cannot claim millions of elements: a heartbeat whose VM list holds 2 Mi
// zero-sized structs in 176 bytes (found by fuzz_frame; it cost vrmd seconds and hundreds of
// MiB) is refused, because each frame's traversal budget scales with its size.
TEST(CodecTest, AmplifiedFrameIsRejected) {
  capnp::MallocMessageBuilder b;
  b.initRoot<wire::AgentMessage>().initHeartbeat().initVms(1);
  kj::Array<capnp::word> words = capnp::messageToFlatArray(b);
  // Rewrite the list pointer (the last pointer before the element) to 2 Mi zero-sized structs.
  bool patched = false;
  for (auto& w : words) {
    std::uint64_t v;
    std::memcpy(&v, &w, 8);
    if ((v & 3) == 1 && ((v >> 32) & 7) == 7) {  // a list pointer of inline-composite elements
      // Keep the pointer; rewrite the tag word after its target to 2 Mi elements of 0 words.
      const std::int64_t offset = static_cast<std::int32_t>(v & 0xffffffffu) >> 2;
      capnp::word* tag = &w + 1 + offset;
      std::uint64_t t = (std::uint64_t{2} << 20) << 2;  // element count in the offset field
      std::memcpy(tag, &t, 8);
      v = (v & 0xffffffffu) | (std::uint64_t{7} << 32);  // 0 words of elements
      std::memcpy(&w, &v, 8);
      patched = true;
      break;
    }
  }
  ASSERT_TRUE(patched);
  auto bytes = words.asBytes();
  auto frame = decodeFrame(bytes.begin(), bytes.size());
  ASSERT_TRUE(frame.isOk());
  EXPECT_FALSE(frame->root<wire::AgentMessage>().isOk());
}

// Ensures two messages glued in one frame are refused rather than half-read.
TEST(CodecTest, TrailingBytesAreRejected) {
  zmq::message_t a = sampleSubmit();
  std::vector<char> both(a.size() * 2);
  std::memcpy(both.data(), a.data(), a.size());
  std::memcpy(both.data() + a.size(), a.data(), a.size());
  auto frame = decodeFrame(both.data(), both.size());
  EXPECT_FALSE(frame.isOk());
}

// Ensures tiny (inline-stored) zmq messages stay valid after decodeFrame takes ownership.
TEST(CodecTest, SmallOwnedFrameStaysValid) {
  capnp::MallocMessageBuilder b;
  b.initRoot<wire::Status>();
  zmq::message_t msg = encodeFrame(b);
  ASSERT_LE(msg.size(), 33u);  // zmq keeps these inline in zmq_msg_t
  auto frame = decodeFrame(std::move(msg));
  ASSERT_TRUE(frame.isOk());
  auto moved = std::move(*frame);
  EXPECT_TRUE(moved.root<wire::Status>().isOk());
}

}  // namespace
}  // namespace vrm::protocol
