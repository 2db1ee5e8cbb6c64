#include "qemu/qmp_client.h"

#include <boost/asio.hpp>
#include <thread>

namespace vrm::vmscheduler {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

struct QmpClient::Impl {
  asio::io_context io;
  asio::local::stream_protocol::socket socket{io};
  std::string buffer;  // bytes read but not yet split into lines
};

QmpClient::QmpClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

QmpClient::~QmpClient() {
  boost::system::error_code ignored;
  impl_->socket.close(ignored);
}

Result<std::unique_ptr<QmpClient>> QmpClient::connect(const std::string& socketPath,
                                                      std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  auto impl = std::make_unique<Impl>();
  boost::system::error_code ec;
  for (;;) {
    impl->socket.close(ec);
    impl->socket.connect(asio::local::stream_protocol::endpoint(socketPath), ec);
    if (!ec) break;
    if (Clock::now() >= deadline) {
      return Status::unavailable("cannot connect to QMP socket " + socketPath + ": " +
                                 ec.message());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::unique_ptr<QmpClient> client(new QmpClient(std::move(impl)));
  auto left = [&] {
    return std::max(std::chrono::milliseconds(1),
                    std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()));
  };
  std::string greeting;
  if (Status s = client->readLine(greeting, left()); !s) return s;
  try {
    if (!nlohmann::json::parse(greeting).contains("QMP")) {
      return Status::internal("QMP socket " + socketPath + " sent no greeting: " + greeting);
    }
  } catch (const nlohmann::json::exception& e) {
    return Status::internal("QMP greeting is not JSON: " + greeting);
  }
  auto caps = client->execute("qmp_capabilities", nlohmann::json(), left());
  if (!caps) return caps.status();
  return client;
}

Status QmpClient::readLine(std::string& line, std::chrono::milliseconds timeout) {
  Impl& im = *impl_;
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    if (auto nl = im.buffer.find('\n'); nl != std::string::npos) {
      line = im.buffer.substr(0, nl);
      im.buffer.erase(0, nl + 1);
      return Status::ok();
    }
    if (!connected_) return Status::unavailable("QMP connection closed by QEMU");
    char chunk[4096];
    boost::system::error_code readError;
    std::size_t got = 0;
    bool done = false;
    im.socket.async_read_some(asio::buffer(chunk),
                              [&](const boost::system::error_code& e, std::size_t n) {
                                readError = e;
                                got = n;
                                done = true;
                              });
    im.io.restart();
    const auto now = Clock::now();
    im.io.run_for(deadline > now ? deadline - now : Clock::duration::zero());
    if (!done) {
      // Timed out: cancel the read and let its handler run before `chunk` goes away.
      im.socket.cancel();
      im.io.restart();
      im.io.run();
    }
    if (got > 0) im.buffer.append(chunk, got);
    if (readError && readError != asio::error::operation_aborted) {
      connected_ = false;
      if (im.buffer.find('\n') != std::string::npos) continue;
      return Status::unavailable("QMP connection lost: " + readError.message());
    }
    if (im.buffer.find('\n') != std::string::npos) continue;
    if (Clock::now() >= deadline) return Status::internal("QMP read timed out");
  }
}

Result<nlohmann::json> QmpClient::execute(const std::string& command,
                                          const nlohmann::json& arguments,
                                          std::chrono::milliseconds timeout) {
  if (!connected_) return Status::unavailable("QMP connection closed by QEMU");
  const std::uint64_t id = nextId_++;
  nlohmann::json request = {{"execute", command}, {"id", id}};
  if (!arguments.is_null() && !arguments.empty()) request["arguments"] = arguments;
  const std::string text = request.dump() + "\n";
  boost::system::error_code ec;
  asio::write(impl_->socket, asio::buffer(text), ec);
  if (ec) {
    connected_ = false;
    return Status::unavailable("QMP write of '" + command + "' failed: " + ec.message());
  }
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    const auto now = Clock::now();
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now);
    if (left.count() < 0) left = std::chrono::milliseconds(0);
    std::string line;
    if (Status s = readLine(line, left); !s) {
      return Status(s.code(), "QMP '" + command + "': " + s.message());
    }
    nlohmann::json message;
    try {
      message = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception&) {
      return Status::internal("QMP '" + command + "': unparsable line: " + line);
    }
    if (message.contains("event")) {
      events_.push_back(std::move(message));
      continue;
    }
    if (!message.contains("id") || message["id"] != id) continue;  // a late answer
    if (message.contains("error")) {
      const auto& error = message["error"];
      return Status::rejected("QMP '" + command + "' failed: " + error.value("class", "?") + ": " +
                              error.value("desc", "?"));
    }
    return message.value("return", nlohmann::json::object());
  }
}

std::vector<nlohmann::json> QmpClient::takeEvents() {
  std::string line;
  while (connected_ && readLine(line, std::chrono::milliseconds(0))) {
    try {
      auto message = nlohmann::json::parse(line);
      if (message.contains("event")) events_.push_back(std::move(message));
    } catch (const nlohmann::json::exception&) {
    }
  }
  std::vector<nlohmann::json> out(events_.begin(), events_.end());
  events_.clear();
  return out;
}

}  // namespace vrm::vmscheduler
