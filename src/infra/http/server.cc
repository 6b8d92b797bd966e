#include "infra/http/server.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <vector>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/uuid/random_generator.hpp>
#include <boost/uuid/uuid_io.hpp>

#include "infra/http/problem.h"

namespace shopcqrs::infra::http {

namespace {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;

constexpr std::size_t kMaxRequestIdLength = 200;
constexpr std::chrono::seconds kLingerTime{2};
constexpr std::size_t kLingerBytes = 4 * 1024 * 1024;

bool SaneRequestId(std::string_view id) {
  if (id.empty() || id.size() > kMaxRequestIdLength) return false;
  return std::all_of(id.begin(), id.end(), [](char c) { return c >= 0x20 && c <= 0x7E; });
}

// A random (version 4) UUID from the kernel's CSPRNG (Boost.UUID reads getrandom), lowercase
// canonical text.
std::string NewRequestId() {
  thread_local boost::uuids::random_generator generator;
  return boost::uuids::to_string(generator());
}

bool IsParseError(const beast::error_code& ec) {
  return ec.category() == bhttp::make_error_code(bhttp::error::bad_target).category();
}

bool IsFramingHeader(std::string_view name) {
  return EqualsIgnoreCase(name, "Content-Length") || EqualsIgnoreCase(name, "Transfer-Encoding") ||
         EqualsIgnoreCase(name, "Connection") || EqualsIgnoreCase(name, "X-Request-Id");
}

// RFC 9110 token characters.
bool ValidHeaderName(std::string_view name) {
  if (name.empty()) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
  });
}

bool ValidHeaderValue(std::string_view value) {
  return std::none_of(value.begin(), value.end(),
                      [](char c) { return c == '\r' || c == '\n' || c == '\0'; });
}

}  // namespace

class HttpServer::Impl {
 public:
  class Session;

  Impl(Options options, Router& router);
  ~Impl();

  void Start();
  void Run();
  void Stop();
  unsigned short port() const { return port_.load(); }

  // Runs the router; never throws.
  Response Handle(Request& request) noexcept;
  void Unregister(std::uint64_t id);

  const Options& options() const { return options_; }
  bool stopping() const { return stopping_.load(std::memory_order_relaxed); }
  net::thread_pool& workers() { return workers_; }

 private:
  void DoAccept();
  void OnAccept(beast::error_code ec, tcp::socket socket);
  std::vector<std::shared_ptr<Session>> LiveSessions();
  bool WaitForSessions(std::chrono::milliseconds timeout);

  Options options_;
  Router& router_;
  std::atomic<bool> stopping_{false};
  std::atomic<unsigned short> port_{0};

  // Sessions unregister themselves on destruction, possibly while ioc_ is being destroyed, so
  // these are declared (and destroyed) outside ioc_.
  std::mutex sessions_mu_;
  std::condition_variable sessions_cv_;
  std::unordered_map<std::uint64_t, std::weak_ptr<Session>> sessions_;
  std::uint64_t next_session_id_ = 0;

  std::mutex state_mu_;
  std::condition_variable state_cv_;
  bool started_ = false;
  bool stop_begun_ = false;
  bool stopped_ = false;

  net::io_context ioc_;
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work_;
  tcp::acceptor acceptor_;
  net::steady_timer accept_retry_;
  net::thread_pool workers_;
  std::vector<std::thread> io_threads_;
};

// One connection. All members are touched only on the connection's strand, except `server_`
// and `executor_` which are immutable.
class HttpServer::Impl::Session : public std::enable_shared_from_this<Session> {
 public:
  Session(HttpServer::Impl& server, tcp::socket&& socket, std::uint64_t id)
      : server_(server), id_(id), stream_(std::move(socket)), executor_(stream_.get_executor()) {
    beast::error_code ec;
    const auto peer = stream_.socket().remote_endpoint(ec);
    if (!ec) client_address_ = peer.address().to_string();
  }

  ~Session() { server_.Unregister(id_); }

  const net::any_io_executor& executor() const { return executor_; }

  void Start() {
    net::dispatch(executor_, [self = shared_from_this()] { self->ReadHeader(); });
  }

  // On the strand: close the connection if it waits for a request; otherwise the response in
  // progress goes out with Connection: close.
  void OnServerStopping() {
    if (state_ == State::kIdle) Close();
  }

  void ForceClose() { Close(); }

 private:
  enum class State { kIdle, kBusy, kClosing };

  void ReadHeader() {
    if (server_.stopping()) {
      Close();
      return;
    }
    state_ = State::kIdle;
    close_after_ = false;
    parser_.emplace();
    parser_->header_limit(server_.options().header_limit);
    parser_->body_limit(server_.options().body_limit);
    stream_.expires_after(server_.options().idle_timeout);
    bhttp::async_read_header(stream_, buffer_, *parser_,
                             beast::bind_front_handler(&Session::OnHeader, shared_from_this()));
  }

  void OnHeader(beast::error_code ec, std::size_t /*bytes*/) {
    started_ = Clock::now();
    if (state_ == State::kClosing) return;
    if (ec == bhttp::error::end_of_stream || ec == net::error::operation_aborted ||
        ec == beast::error::timeout || ec == net::error::eof) {
      Close();
      return;
    }
    state_ = State::kBusy;
    CaptureRequestLine();
    if (ec == bhttp::error::body_limit) {  // Content-Length over the limit: body not read
      SendProblem(PayloadTooLarge());
      return;
    }
    if (ec == bhttp::error::header_limit) {
      SendProblem(MakeProblem(431, "header_too_large", "request header is too large"));
      return;
    }
    if (ec) {
      if (IsParseError(ec)) {
        SendProblem(MakeProblem(400, "bad_request", "malformed HTTP request"));
      } else {
        Close();
      }
      return;
    }
    if (parser_->is_done()) {
      Dispatch();
      return;
    }
    const auto& header = parser_->get();
    if (version_ >= 11 && EqualsIgnoreCase(header[bhttp::field::expect], "100-continue")) {
      continue_.emplace(bhttp::status::continue_, version_);
      stream_.expires_after(server_.options().write_timeout);
      bhttp::async_write(stream_, *continue_,
                         [self = shared_from_this()](beast::error_code write_ec, std::size_t) {
                           if (write_ec) {
                             self->Close();
                           } else {
                             self->ReadBody();
                           }
                         });
      return;
    }
    ReadBody();
  }

  void ReadBody() {
    stream_.expires_after(server_.options().read_timeout);
    bhttp::async_read(stream_, buffer_, *parser_,
                      beast::bind_front_handler(&Session::OnBody, shared_from_this()));
  }

  void OnBody(beast::error_code ec, std::size_t /*bytes*/) {
    if (state_ == State::kClosing) return;
    if (ec == bhttp::error::body_limit) {  // e.g. a chunked body that grew too large
      SendProblem(PayloadTooLarge());
      return;
    }
    if (ec) {
      if (IsParseError(ec)) {
        SendProblem(MakeProblem(400, "bad_request", "malformed HTTP request body"));
      } else {
        Close();
      }
      return;
    }
    Dispatch();
  }

  // Records what the access log and the response need from the (possibly partial) header.
  void CaptureRequestLine() {
    const auto& header = parser_->get();
    method_ = std::string(header.method_string());
    const std::string_view target = header.target();
    path_ = std::string(target.substr(0, target.find('?')));
    version_ = header.version() == 10 ? 10 : 11;
    keep_alive_ = header.keep_alive();
    head_ = header.method() == bhttp::verb::head;
    const std::string_view id = header["X-Request-Id"];
    request_id_ = SaneRequestId(id) ? std::string(id) : NewRequestId();
  }

  void Dispatch() {
    stream_.expires_never();
    auto message = parser_->release();
    parser_.reset();
    Request request;
    request.method = method_;
    request.SetTarget(std::string(message.target()));
    for (const auto& field : message) {
      request.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
    }
    request.body = std::move(message.body());
    request.request_id = request_id_;
    request.client_address = client_address_;

    net::post(server_.workers(),
              [self = shared_from_this(), request = std::move(request)]() mutable {
                Response response = self->server_.Handle(request);
                net::post(self->executor_, [self, response = std::move(response)]() mutable {
                  self->WriteResponse(std::move(response));
                });
              });
  }

  void SendProblem(const Problem& problem) {
    close_after_ = true;
    WriteResponse(ToResponse(problem));
  }

  void WriteResponse(Response response) {
    if (state_ == State::kClosing) return;
    const bool keep = keep_alive_ && !close_after_ && !server_.stopping();
    int status = 500;
    try {
      status = Build(std::move(response), keep);
    } catch (const std::exception& e) {
      // E.g. a header a handler set that HTTP cannot carry.
      spdlog::error("http response rejected request_id={} path={} error={}", request_id_, path_,
                    e.what());
      status = Build(ToResponse(InternalError()), keep);
    }
    LogAccess(status);
    stream_.expires_after(server_.options().write_timeout);
    bhttp::async_write(stream_, response_,
                       beast::bind_front_handler(&Session::OnWrite, shared_from_this(), keep));
  }

  // Fills response_; answers the status sent.
  int Build(Response response, bool keep) {
    int status = response.status;
    if (status < 100 || status > 599) status = 500;
    response_ = {};
    response_.version(version_);
    response_.result(static_cast<unsigned>(status));
    if (!response.content_type.empty()) {
      response_.set(bhttp::field::content_type, response.content_type);
    }
    for (const auto& [name, value] : response.headers) {
      if (!ValidHeaderName(name) || !ValidHeaderValue(value) || IsFramingHeader(name)) {
        continue;
      }
      response_.insert(name, value);
    }
    response_.set("X-Request-Id", request_id_);
    response_.body() = std::move(response.body);
    response_.keep_alive(keep);
    response_.prepare_payload();
    if (head_) response_.body().clear();  // Content-Length stays that of the GET answer
    return status;
  }

  void OnWrite(bool keep, beast::error_code ec, std::size_t /*bytes*/) {
    if (ec) {
      Close();
      return;
    }
    if (!keep) {
      LingeringClose();
      return;
    }
    ReadHeader();
  }

  // Half-closes, then discards what the client still sends for a short while, so that a
  // client still writing (e.g. the body of a refused request) reads our response rather than
  // a connection reset.
  void LingeringClose() {
    state_ = State::kClosing;
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    if (ec) {
      Close();
      return;
    }
    linger_buffer_.resize(16 * 1024);
    lingered_ = 0;
    stream_.expires_after(kLingerTime);
    Drain();
  }

  void Drain() {
    stream_.async_read_some(net::buffer(linger_buffer_),
                            [self = shared_from_this()](beast::error_code ec, std::size_t n) {
                              self->lingered_ += n;
                              if (ec || self->lingered_ > kLingerBytes) {
                                self->Close();
                              } else {
                                self->Drain();
                              }
                            });
  }

  void Close() {
    state_ = State::kClosing;
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.close();
  }

  void LogAccess(int status) const {
    const auto micros =
        std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - started_).count();
    if (status >= 500) {
      spdlog::warn("http_access method={} path={} status={} duration_us={} request_id={}", method_,
                   path_, status, micros, request_id_);
    } else {
      spdlog::debug("http_access method={} path={} status={} duration_us={} request_id={}", method_,
                    path_, status, micros, request_id_);
    }
  }

  HttpServer::Impl& server_;
  const std::uint64_t id_;
  beast::tcp_stream stream_;
  std::string client_address_;
  const net::any_io_executor executor_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  std::optional<bhttp::response<bhttp::empty_body>> continue_;
  bhttp::response<bhttp::string_body> response_;
  std::vector<char> linger_buffer_;
  std::size_t lingered_ = 0;

  State state_ = State::kIdle;
  bool close_after_ = false;
  bool keep_alive_ = true;
  bool head_ = false;
  unsigned version_ = 11;
  std::string method_;
  std::string path_;
  std::string request_id_;
  Clock::time_point started_ = Clock::now();
};

// ---- Impl ----

HttpServer::Impl::Impl(Options options, Router& router)
    : options_(std::move(options)),
      router_(router),
      ioc_(std::max(1, options_.io_threads)),
      acceptor_(net::make_strand(ioc_)),
      accept_retry_(acceptor_.get_executor()),
      workers_(static_cast<std::size_t>(std::max(1, options_.worker_threads))) {}

HttpServer::Impl::~Impl() {
  Stop();
  workers_.join();
}

void HttpServer::Impl::Start() {
  std::lock_guard lock(state_mu_);
  if (started_ || stop_begun_) return;

  tcp::resolver resolver(ioc_);
  const auto results = resolver.resolve(options_.host, std::to_string(options_.port),
                                        tcp::resolver::passive | tcp::resolver::numeric_service);
  if (results.empty()) {
    throw std::system_error(std::make_error_code(std::errc::address_not_available),
                            "cannot resolve " + options_.host);
  }
  const tcp::endpoint endpoint = results.begin()->endpoint();
  try {
    acceptor_.open(endpoint.protocol());
    acceptor_.set_option(net::socket_base::reuse_address(true));
    acceptor_.bind(endpoint);
    acceptor_.listen(net::socket_base::max_listen_connections);
  } catch (const boost::system::system_error& e) {
    beast::error_code ignored;
    acceptor_.close(ignored);
    throw std::system_error(std::error_code(e.code().value(), std::generic_category()),
                            fmt::format("cannot listen on {}:{}", options_.host, options_.port));
  }
  port_ = acceptor_.local_endpoint().port();

  work_.emplace(ioc_.get_executor());
  net::dispatch(acceptor_.get_executor(), [this] { DoAccept(); });
  const int threads = std::max(1, options_.io_threads);
  for (int i = 0; i < threads; ++i) {
    io_threads_.emplace_back([this] {
      while (true) {
        try {
          ioc_.run();
          return;
        } catch (const std::exception& e) {
          spdlog::error("http io thread caught: {}", e.what());
        } catch (...) {
          spdlog::error("http io thread caught an unknown exception");
        }
      }
    });
  }
  started_ = true;
  spdlog::info("http server listening on {}:{}", options_.host, port_.load());
}

void HttpServer::Impl::Run() {
  Start();
  std::unique_lock lock(state_mu_);
  state_cv_.wait(lock, [this] { return stopped_; });
}

void HttpServer::Impl::Stop() {
  {
    std::unique_lock lock(state_mu_);
    if (!started_) {
      stop_begun_ = stopped_ = true;
      state_cv_.notify_all();
      return;
    }
    if (stop_begun_) {
      state_cv_.wait(lock, [this] { return stopped_; });
      return;
    }
    stop_begun_ = true;
  }
  const auto begun = Clock::now();
  stopping_ = true;
  net::post(acceptor_.get_executor(), [this] {
    beast::error_code ignored;
    acceptor_.close(ignored);
    accept_retry_.cancel();
  });
  for (auto& session : LiveSessions()) {
    net::post(session->executor(), [session] { session->OnServerStopping(); });
  }
  if (!WaitForSessions(options_.shutdown_timeout)) {
    const auto left = LiveSessions();
    spdlog::warn("http server: {} connection(s) still busy after {} ms; closing them", left.size(),
                 options_.shutdown_timeout.count());
    for (auto& session : left) {
      net::post(session->executor(), [session] { session->ForceClose(); });
    }
  }
  // Handlers already running cannot be interrupted; wait for them (their responses then fail
  // to write on closed connections, or go out if the connection is still open).
  workers_.join();
  WaitForSessions(std::chrono::seconds(2));
  work_.reset();
  ioc_.stop();
  for (auto& thread : io_threads_) {
    if (thread.joinable()) thread.join();
  }
  {
    std::lock_guard lock(state_mu_);
    stopped_ = true;
  }
  state_cv_.notify_all();
  spdlog::info("http server stopped after {} ms",
               std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - begun).count());
}

void HttpServer::Impl::DoAccept() {
  acceptor_.async_accept(net::make_strand(ioc_), [this](beast::error_code ec, tcp::socket socket) {
    OnAccept(ec, std::move(socket));
  });
}

void HttpServer::Impl::OnAccept(beast::error_code ec, tcp::socket socket) {
  if (ec == net::error::operation_aborted || stopping() || !acceptor_.is_open()) return;
  if (ec) {
    // E.g. out of file descriptors: back off briefly rather than spin.
    spdlog::warn("http accept failed: {}", ec.message());
    accept_retry_.expires_after(std::chrono::milliseconds(50));
    accept_retry_.async_wait([this](beast::error_code wait_ec) {
      if (!wait_ec && !stopping()) DoAccept();
    });
    return;
  }
  beast::error_code ignored;
  socket.set_option(tcp::no_delay(true), ignored);
  std::shared_ptr<Session> session;
  {
    std::lock_guard lock(sessions_mu_);
    const std::uint64_t id = next_session_id_++;
    session = std::make_shared<Session>(*this, std::move(socket), id);
    sessions_.emplace(id, session);
  }
  session->Start();
  DoAccept();
}

void HttpServer::Impl::Unregister(std::uint64_t id) {
  std::lock_guard lock(sessions_mu_);
  sessions_.erase(id);
  if (sessions_.empty()) sessions_cv_.notify_all();
}

auto HttpServer::Impl::LiveSessions() -> std::vector<std::shared_ptr<Session>> {
  std::vector<std::shared_ptr<Session>> live;
  std::lock_guard lock(sessions_mu_);
  live.reserve(sessions_.size());
  for (const auto& [id, weak] : sessions_) {
    if (auto session = weak.lock()) live.push_back(std::move(session));
  }
  return live;
}

bool HttpServer::Impl::WaitForSessions(std::chrono::milliseconds timeout) {
  std::unique_lock lock(sessions_mu_);
  return sessions_cv_.wait_for(lock, timeout, [this] { return sessions_.empty(); });
}

Response HttpServer::Impl::Handle(Request& request) noexcept {
  try {
    return router_.Dispatch(request);
  } catch (const std::exception& e) {
    spdlog::error("http handler failed request_id={} method={} path={} error={}",
                  request.request_id, request.method, request.path, e.what());
  } catch (...) {
    spdlog::error("http handler failed request_id={} method={} path={} error=unknown exception",
                  request.request_id, request.method, request.path);
  }
  try {
    return ToResponse(InternalError());
  } catch (...) {
    Response response;
    response.status = 500;
    response.content_type.clear();
    return response;
  }
}

// ---- HttpServer ----

HttpServer::HttpServer(Options options, Router& router)
    : impl_(std::make_unique<Impl>(std::move(options), router)) {}

HttpServer::~HttpServer() = default;

void HttpServer::Start() { impl_->Start(); }
void HttpServer::Run() { impl_->Run(); }
void HttpServer::Stop() { impl_->Stop(); }
unsigned short HttpServer::port() const { return impl_->port(); }

}  // namespace shopcqrs::infra::http
