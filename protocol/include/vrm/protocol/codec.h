// Framing of Cap'n Proto messages in ZeroMQ frames: one message per frame.
//
// Frames from the network are untrusted. decodeFrame() checks the size, copies the bytes into
// word-aligned storage when they are misaligned (small TCP frames often are), and applies
// ReaderOptions limits. DecodedFrame::root<T>() reads every field of T's schema once, so that a
// malformed pointer (out of bounds, too deep, or of the wrong kind: a list where a struct
// belongs, text without its NUL) is reported here, as a typed Status, instead of as an
// exception later.
#pragma once

#include <capnp/dynamic.h>
#include <capnp/message.h>
#include <capnp/serialize.h>

#include <cstddef>
#include <memory>
#include <string>
#include <zmq.hpp>

#include "vrm/protocol/status.h"

namespace vrm::protocol {

struct DecodeLimits {
  // Largest frame accepted, in bytes. Default 16 MiB: a full cluster inventory fits easily.
  std::size_t maxFrameBytes = 16u << 20;
  // Cap'n Proto traversal limit in 8-byte words (guards against amplification). Default 4M words.
  // Each frame gets at most 8 times its own size in words (+1024): a message is read in full a
  // few times, never more, so only amplified frames meet that bound.
  std::uint64_t traversalLimitWords = 4u << 20;
  // Maximum pointer nesting depth. Default 64.
  int nestingLimit = 64;
};

namespace detail {
// Reads every field the message's schema knows, recursively (the active member of each union).
// Throws kj::Exception on the first malformed one. Fields unknown to the schema (from a newer
// peer) are never read by anyone, so they are not checked.
void readEveryField(capnp::DynamicStruct::Reader message);
}  // namespace detail

class DecodedFrame {
 public:
  DecodedFrame(DecodedFrame&&) = default;
  DecodedFrame& operator=(DecodedFrame&&) = default;

  // The root as T, every field checked. The reader borrows from this frame: keep the frame
  // alive while using it. Reading the whole message once through it stays within the
  // traversal limit; reading it again may not.
  template <typename T>
  Result<typename T::Reader> root() const {
    try {
      // Bounds and depth alone (totalSize()) would let a pointer of the wrong kind through, to
      // throw in whichever caller reads that field (fuzz_frame found it; codec_test has it).
      // The check reads through a reader of its own: it must not spend the traversal budget of
      // the caller's reader, whose one full read of the message is then within the limit.
      capnp::FlatArrayMessageReader check(impl_->words, impl_->options);
      detail::readEveryField(capnp::toDynamic(check.template getRoot<T>()));
      return impl_->reader->template getRoot<T>();
    } catch (const kj::Exception& e) {
      return Status::invalid(std::string("malformed message: ") + e.getDescription().cStr());
    }
  }

 private:
  friend Result<DecodedFrame> decodeFrame(const void*, std::size_t, const DecodeLimits&);
  friend Result<DecodedFrame> decodeFrame(zmq::message_t&&, const DecodeLimits&);

 public:
  struct Impl {
    zmq::message_t owned;            // the frame itself, when decodeFrame took ownership
    kj::Array<capnp::word> storage;  // a word-aligned copy, when the frame was misaligned
    std::unique_ptr<capnp::FlatArrayMessageReader> reader;
    kj::ArrayPtr<const capnp::word> words;  // what `reader` reads
    capnp::ReaderOptions options;
  };

 private:
  DecodedFrame() : impl_(std::make_unique<Impl>()) {}
  std::unique_ptr<Impl> impl_;
};

// Validates a frame's size and segment table. When the bytes are 8-byte aligned no copy is
// made, so they must outlive the result. Never throws.
Result<DecodedFrame> decodeFrame(const void* data, std::size_t size,
                                 const DecodeLimits& limits = {});

// As above, taking ownership of the frame so the result is self-contained. Prefer this one.
Result<DecodedFrame> decodeFrame(zmq::message_t&& frame, const DecodeLimits& limits = {});

// Serializes a built message into one frame.
zmq::message_t encodeFrame(capnp::MessageBuilder& message);

// Copies a Cap'n Proto text into a std::string.
inline std::string toStd(capnp::Text::Reader text) { return std::string(text.cStr(), text.size()); }

}  // namespace vrm::protocol
