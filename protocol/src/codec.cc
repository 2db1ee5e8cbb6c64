#include "vrm/protocol/codec.h"

#include <algorithm>
#include <cstdint>
#include <cstring>

namespace vrm::protocol {

// How many times a message may be read in full through one reader (the budget of each reader,
// in multiples of the frame's size, plus a constant for tiny frames).
constexpr std::uint64_t kReadsPerFrameWord = 8;

namespace detail {
namespace {

void readValue(const capnp::DynamicValue::Reader& value) {
  switch (value.getType()) {
    case capnp::DynamicValue::STRUCT:
      readEveryField(value.as<capnp::DynamicStruct>());
      break;
    case capnp::DynamicValue::LIST:
      for (auto element : value.as<capnp::DynamicList>()) readValue(element);
      break;
    default:
      break;  // scalars, enums, text and data: get() already checked them
  }
}

}  // namespace

void readEveryField(capnp::DynamicStruct::Reader message) {
  for (auto field : message.getSchema().getNonUnionFields()) readValue(message.get(field));
  KJ_IF_MAYBE (field, message.which()) {
    readValue(message.get(*field));
  }
}

}  // namespace detail

Status decodeInto(DecodedFrame::Impl& impl, const void* data, std::size_t size,
                  const DecodeLimits& limits) {
  if (size == 0) return Status::invalid("empty frame");
  if (size > limits.maxFrameBytes) {
    return Status::invalid("frame of " + std::to_string(size) + " bytes exceeds the limit of " +
                           std::to_string(limits.maxFrameBytes));
  }
  if (size % sizeof(capnp::word) != 0) {
    return Status::invalid("truncated frame: " + std::to_string(size) +
                           " bytes is not a whole number of 8-byte words");
  }
  kj::ArrayPtr<const capnp::word> words;
  if (reinterpret_cast<std::uintptr_t>(data) % alignof(capnp::word) == 0) {
    words = kj::arrayPtr(static_cast<const capnp::word*>(data), size / sizeof(capnp::word));
  } else {
    impl.storage = kj::heapArray<capnp::word>(size / sizeof(capnp::word));
    std::memcpy(impl.storage.begin(), data, size);
    words = impl.storage.asPtr();
  }
  capnp::ReaderOptions options;
  // Reading a message costs about its size in words, but aliased pointers and lists of
  // zero-sized structs (counted as a word per element) let a few bytes claim millions of words:
  // fuzz_frame found a 176-byte heartbeat of 2 Mi empty VMs that took vrmd seconds and hundreds
  // of MiB to convert. So the budget also scales with what was actually received.
  options.traversalLimitInWords = std::min<std::uint64_t>(
      limits.traversalLimitWords, kReadsPerFrameWord * (size / sizeof(capnp::word)) + 1024);
  options.nestingLimit = limits.nestingLimit;
  try {
    impl.reader = std::make_unique<capnp::FlatArrayMessageReader>(words, options);
    impl.words = words;
    impl.options = options;
    // The segment table may claim less data than the frame holds: trailing bytes mean a
    // framing error (two messages in one frame, or garbage).
    if (impl.reader->getEnd() != words.end()) {
      impl.reader.reset();
      return Status::invalid("frame has trailing bytes after the message");
    }
  } catch (const kj::Exception& e) {
    impl.reader.reset();
    return Status::invalid(std::string("bad frame: ") + e.getDescription().cStr());
  }
  return Status::ok();
}

Result<DecodedFrame> decodeFrame(const void* data, std::size_t size, const DecodeLimits& limits) {
  DecodedFrame frame;
  Status s = decodeInto(*frame.impl_, data, size, limits);
  if (!s) return s;
  return frame;
}

Result<DecodedFrame> decodeFrame(zmq::message_t&& message, const DecodeLimits& limits) {
  DecodedFrame frame;
  // Move first, then decode in place: zmq keeps small messages inline in zmq_msg_t, so the data
  // pointer changes on a move. Impl lives on the heap and does not move afterwards.
  frame.impl_->owned = std::move(message);
  Status s = decodeInto(*frame.impl_, frame.impl_->owned.data(), frame.impl_->owned.size(), limits);
  if (!s) return s;
  return frame;
}

zmq::message_t encodeFrame(capnp::MessageBuilder& message) {
  kj::Array<capnp::word> words = capnp::messageToFlatArray(message);
  auto bytes = words.asBytes();
  return zmq::message_t(bytes.begin(), bytes.size());
}

}  // namespace vrm::protocol
