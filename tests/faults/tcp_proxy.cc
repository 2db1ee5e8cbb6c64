// tcp_proxy: a TCP relay between one agent and vrmd that can cut the link on command, so the
// fault campaigns partition one agent without touching loopback's firewall (other tests share
// it). Single-threaded Boost.Asio; commands are signals:
//
//   SIGUSR1  partition: nothing passes in either direction. Connections stay open and bytes wait
//            in the kernel's buffers, as across a real partition before TCP gives up.
//   SIGUSR2  heal: traffic flows again, what waited is delivered.
//   SIGHUP   reset: every connection is closed (what waited is lost), as when TCP gives up on
//            a long partition; new connections are accepted again (closed at once while
//            partitioned).
//   SIGTERM, SIGINT  exit.
//
//   tcp_proxy --listen PORT --to PORT   (both on 127.0.0.1; --listen 0: a port the OS chooses)
// Prints "listening PORT" on stdout once it accepts connections.
// clang-format off
#include <utility>  // before Asio: Boost 1.74 uses std::exchange without it
// clang-format on
#include <array>
#include <boost/asio.hpp>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <list>
#include <memory>
#include <string>

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

bool gPartitioned = false;

class Session;
// Held here, not only by pending handlers: a parked session has none.
std::list<std::shared_ptr<Session>> gSessions;

// Relays bytes both ways between a downstream (accepted) and an upstream socket.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket down, asio::io_context& io) : down_(std::move(down)), up_(io) {}

  void start(const tcp::endpoint& to) {
    auto self = shared_from_this();
    up_.async_connect(to, [self](boost::system::error_code ec) {
      if (ec) return self->close();
      self->pump(self->down_, self->up_, self->downBuf_, self->downParked_);
      self->pump(self->up_, self->down_, self->upBuf_, self->upParked_);
    });
  }

  void close() {
    boost::system::error_code ignored;
    down_.close(ignored);
    up_.close(ignored);
    closed_ = true;
  }
  bool closed() const { return closed_; }

  // Heal: resume the directions parked by a partition.
  void resume() {
    if (downParked_) {
      downParked_ = false;
      pump(down_, up_, downBuf_, downParked_);
    }
    if (upParked_) {
      upParked_ = false;
      pump(up_, down_, upBuf_, upParked_);
    }
  }

 private:
  using Buffer = std::array<char, 64 * 1024>;

  // Reads from `from` and writes everything to `to`, one chunk at a time; parks (reads nothing)
  // while partitioned so the bytes stay in the kernel.
  void pump(tcp::socket& from, tcp::socket& to, Buffer& buf, bool& parked) {
    if (gPartitioned) {
      parked = true;
      return;
    }
    auto self = shared_from_this();
    from.async_read_some(asio::buffer(buf), [self, &from, &to, &buf, &parked](
                                                boost::system::error_code ec, std::size_t n) {
      if (ec) return self->close();
      asio::async_write(
          to, asio::buffer(buf, n),
          [self, &from, &to, &buf, &parked](boost::system::error_code ec2, std::size_t) {
            if (ec2) return self->close();
            self->pump(from, to, buf, parked);
          });
    });
  }

  tcp::socket down_;
  tcp::socket up_;
  Buffer downBuf_{};
  Buffer upBuf_{};
  bool downParked_ = false;
  bool upParked_ = false;
  bool closed_ = false;
};

template <typename F>
void forEachSession(F f) {
  for (auto it = gSessions.begin(); it != gSessions.end();) {
    if ((*it)->closed()) {
      it = gSessions.erase(it);
    } else {
      f(**it);
      ++it;
    }
  }
}

void accept(tcp::acceptor& acceptor, asio::io_context& io, const tcp::endpoint& to) {
  acceptor.async_accept([&acceptor, &io, to](boost::system::error_code ec, tcp::socket s) {
    if (!ec) {
      if (gPartitioned) {
        s.close();  // a new connection across a partition goes nowhere
      } else {
        forEachSession([](Session&) {});  // drop closed ones
        auto session = std::make_shared<Session>(std::move(s), io);
        gSessions.push_back(session);
        session->start(to);
      }
    }
    if (acceptor.is_open()) accept(acceptor, io, to);
  });
}

int usage() {
  std::fprintf(stderr, "usage: tcp_proxy --listen PORT --to PORT\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  int listenPort = 0, toPort = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const int value = std::atoi(argv[i + 1]);
    if (flag == "--listen") {
      listenPort = value;
    } else if (flag == "--to") {
      toPort = value;
    } else {
      return usage();
    }
  }
  if (argc != 5 || listenPort < 0 || listenPort > 65535 || toPort <= 0 || toPort > 65535) {
    return usage();
  }
  asio::io_context io;
  const auto loopback = asio::ip::make_address("127.0.0.1");
  const tcp::endpoint to(loopback, static_cast<unsigned short>(toPort));
  tcp::acceptor acceptor(io);
  try {
    acceptor.open(tcp::v4());
    acceptor.set_option(tcp::acceptor::reuse_address(true));
    acceptor.bind(tcp::endpoint(loopback, static_cast<unsigned short>(listenPort)));
    acceptor.listen();
  } catch (const boost::system::system_error& e) {
    std::fprintf(stderr, "tcp_proxy: cannot listen on 127.0.0.1:%d: %s\n", listenPort, e.what());
    return 1;
  }
  accept(acceptor, io, to);

  asio::signal_set signals(io, SIGUSR1, SIGUSR2, SIGHUP);
  asio::signal_set stop(io, SIGTERM, SIGINT);
  std::function<void(boost::system::error_code, int)> onSignal = [&](boost::system::error_code ec,
                                                                     int sig) {
    if (ec) return;
    if (sig == SIGUSR1) {
      gPartitioned = true;
      std::cout << "partitioned" << std::endl;
    } else if (sig == SIGUSR2) {
      gPartitioned = false;
      forEachSession([](Session& s) { s.resume(); });
      std::cout << "healed" << std::endl;
    } else if (sig == SIGHUP) {
      forEachSession([](Session& s) { s.close(); });
      std::cout << "reset" << std::endl;
    }
    signals.async_wait(onSignal);
  };
  signals.async_wait(onSignal);
  stop.async_wait([&](boost::system::error_code, int) { io.stop(); });
  std::cout << "listening " << acceptor.local_endpoint().port() << std::endl;
  io.run();
  return 0;
}
