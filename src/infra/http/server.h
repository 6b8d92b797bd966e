#pragma once

// The HTTP/1.1 server (Boost.Beast), kept behind a pimpl so that users of this header do not
// compile Beast.
//
// - Connections are served on `io_threads` I/O threads, each on its own strand. Requests on a
//   connection are handled one at a time, so pipelined requests are answered in order.
// - Handlers may block (they talk to PostgreSQL synchronously): they run on a pool of
//   `worker_threads` threads and the response is posted back to the connection's strand.
// - Limits: a request header over `header_limit` is 431; a body over `body_limit` (1 MiB) is
//   413 payload_too_large. With a Content-Length the 413 goes out as soon as the header is
//   read, without reading the body; the connection is then closed. `Expect: 100-continue` is
//   answered before a body is read.
// - Timeouts: `idle_timeout` while waiting for (the header of) a request, `read_timeout` for
//   its body, `write_timeout` for a response. A timed-out connection is closed.
// - Every response carries X-Request-Id: the client's if it sent a sane one (1..200 characters
//   0x20-0x7E), otherwise a generated UUID.
// - A handler that throws produces 500 internal_error with a generic detail; the exception is
//   logged at error level with the request id. Access logs are at debug level (5xx at warn).
// - Stop() is graceful: it stops accepting, closes idle keep-alive connections, lets in-flight
//   requests finish and their responses be written (with Connection: close) for up to
//   `shutdown_timeout`, then closes whatever is left and returns once running handlers have
//   returned (a handler cannot be interrupted).

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "infra/http/router.h"

namespace shopcqrs::infra::http {

class HttpServer {
 public:
  struct Options {
    std::string host = "127.0.0.1";
    unsigned short port = 8080;  // 0: an ephemeral port, see port()
    int io_threads = 1;
    int worker_threads = 4;
    std::chrono::milliseconds idle_timeout{30'000};
    std::chrono::milliseconds read_timeout{30'000};
    std::chrono::milliseconds write_timeout{30'000};
    std::chrono::milliseconds shutdown_timeout{10'000};
    std::size_t body_limit = 1024 * 1024;
    std::uint32_t header_limit = 16 * 1024;
  };

  // `router` must outlive the server.
  HttpServer(Options options, Router& router);
  ~HttpServer();  // Stop()s if running
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds, listens and starts serving on background threads; returns at once. Throws
  // std::system_error when the address cannot be bound. Calling it again does nothing.
  void Start();
  // Start()s if needed, then blocks until Stop() has completed (from another thread).
  void Run();
  // Graceful stop, see above. Idempotent and thread-safe; must not be called from a handler.
  void Stop();

  // The bound port (meaningful after Start()).
  unsigned short port() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace shopcqrs::infra::http
