#pragma once

// A tiny synchronous HTTP/1.1 client for tests (Boost.Beast), header-only.
//
//   shopcqrs::testing::HttpClient client("127.0.0.1", port);
//   auto r = client.Request("POST", "/v1/customers", R"({"name":"A","email":"a@x"})",
//                           {{"Content-Type", "application/json"}});
//   EXPECT_EQ(r.status, 201);
//
// The connection is kept alive between requests and reopened when the server closed it (a
// request on a reused connection that fails before any response byte is retried once on a new
// connection). Every operation has a timeout (default 10 s) so a test never hangs. Low-level
// calls (Connect, SendRaw, ReadResponse, WaitForClose) allow pipelining and partial-request
// tests.

#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

namespace shopcqrs::testing {

using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

struct HttpResponse {
  int status = 0;
  HttpHeaders headers;
  std::string body;
  bool keep_alive = true;

  // First header of that name (case-insensitive); "" when absent.
  std::string Header(std::string_view name) const {
    if (auto value = FindHeader(name)) return *value;
    return {};
  }
  bool HasHeader(std::string_view name) const { return FindHeader(name).has_value(); }
  // The body parsed as JSON (throws on invalid JSON).
  boost::json::value Json() const { return boost::json::parse(body); }

 private:
  std::optional<std::string> FindHeader(std::string_view name) const {
    for (const auto& [key, value] : headers) {
      if (boost::beast::iequals(key, name)) return value;
    }
    return std::nullopt;
  }
};

// The Authorization header sent by default to a server, by port: the black-box fixtures register
// the admin token of each instance they start. A request whose headers name Authorization sends
// theirs instead, and an empty value sends none at all (to test the anonymous answers).
class DefaultCredentials {
 public:
  static void Set(unsigned short port, std::string authorization) {
    std::lock_guard lock(Mutex());
    Map()[port] = std::move(authorization);
  }
  static std::optional<std::string> For(unsigned short port) {
    std::lock_guard lock(Mutex());
    auto it = Map().find(port);
    if (it == Map().end()) return std::nullopt;
    return it->second;
  }
  // `headers` as a request to `port` sends them.
  static HttpHeaders Apply(unsigned short port, const HttpHeaders& headers) {
    HttpHeaders out;
    bool named = false;
    for (const auto& [key, value] : headers) {
      if (boost::beast::iequals(key, "Authorization")) {
        named = true;
        if (value.empty()) continue;
      }
      out.emplace_back(key, value);
    }
    if (!named) {
      if (auto authorization = For(port)) out.emplace_back("Authorization", *authorization);
    }
    return out;
  }

 private:
  static std::mutex& Mutex() {
    static std::mutex mutex;
    return mutex;
  }
  static std::map<unsigned short, std::string>& Map() {
    static std::map<unsigned short, std::string> map;
    return map;
  }
};

class HttpError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class HttpClient {
 public:
  HttpClient(std::string host, unsigned short port,
             std::chrono::milliseconds timeout = std::chrono::seconds(10))
      : host_(std::move(host)), port_(port), timeout_(timeout), stream_(ioc_) {}

  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // One request/response exchange on the kept-alive connection. Adds Host; adds
  // Content-Length when there is a body (or for POST/PUT/PATCH). Headers are sent as given:
  // no Content-Type is added (see Json()).
  HttpResponse Request(std::string_view method, std::string_view target, std::string_view body = {},
                       const HttpHeaders& headers = {}) {
    const bool reused = IsOpen();
    if (!reused) Connect();
    const std::string wire =
        Serialize(method, target, body, DefaultCredentials::Apply(port_, headers));
    try {
      SendRaw(wire);
      return ReadResponse(method == "HEAD");
    } catch (const StaleConnection&) {
      if (!reused) throw HttpError("server closed the connection without answering");
      Close();
      Connect();
      SendRaw(wire);
      return ReadResponse(method == "HEAD");
    }
  }

  // Request() with Content-Type: application/json unless the headers name one.
  HttpResponse Json(std::string_view method, std::string_view target, std::string_view body,
                    HttpHeaders headers = {}) {
    bool has_type = false;
    for (const auto& [key, value] : headers) {
      if (boost::beast::iequals(key, "Content-Type")) has_type = true;
    }
    if (!has_type) headers.emplace_back("Content-Type", "application/json");
    return Request(method, target, body, headers);
  }
  HttpResponse Get(std::string_view target, const HttpHeaders& headers = {}) {
    return Request("GET", target, {}, headers);
  }
  HttpResponse Post(std::string_view target, std::string_view body, HttpHeaders headers = {}) {
    return Json("POST", target, body, std::move(headers));
  }

  // ---- low level ----

  void Connect() {
    Close();
    boost::asio::ip::tcp::resolver resolver(ioc_);
    const auto endpoints = resolver.resolve(host_, std::to_string(port_));
    boost::beast::error_code result = boost::asio::error::would_block;
    stream_.expires_after(timeout_);
    stream_.async_connect(endpoints,
                          [&](boost::beast::error_code ec, const auto&) { result = ec; });
    RunIo();
    if (result) throw HttpError("connect failed: " + result.message());
    stream_.socket().set_option(boost::asio::ip::tcp::no_delay(true));
    buffer_.consume(buffer_.size());
    ++connects_;
  }

  bool IsOpen() const { return stream_.socket().is_open(); }

  void Close() {
    if (!stream_.socket().is_open()) return;
    boost::beast::error_code ignored;
    stream_.socket().shutdown(boost::asio::ip::tcp::socket::shutdown_both, ignored);
    stream_.close();
  }

  // Writes bytes as they are (connects first if needed).
  void SendRaw(std::string_view bytes) {
    if (!IsOpen()) Connect();
    boost::beast::error_code result = boost::asio::error::would_block;
    stream_.expires_after(timeout_);
    boost::asio::async_write(stream_, boost::asio::buffer(bytes.data(), bytes.size()),
                             [&](boost::beast::error_code ec, std::size_t) { result = ec; });
    RunIo();
    if (result) {
      Close();
      throw StaleConnection("write failed: " + result.message());
    }
  }

  // Reads one response from the connection. `head`: the request was HEAD (no body follows).
  HttpResponse ReadResponse(bool head = false) {
    namespace http = boost::beast::http;
    http::response_parser<http::string_body> parser;
    parser.body_limit(64 * 1024 * 1024);
    parser.header_limit(64 * 1024);
    if (head) parser.skip(true);
    boost::beast::error_code result = boost::asio::error::would_block;
    stream_.expires_after(timeout_);
    http::async_read(stream_, buffer_, parser,
                     [&](boost::beast::error_code ec, std::size_t) { result = ec; });
    RunIo();
    if (result) {
      const bool nothing = !parser.got_some();
      Close();
      if (nothing &&
          (result == http::error::end_of_stream || result == boost::asio::error::connection_reset ||
           result == boost::asio::error::eof)) {
        throw StaleConnection("connection closed before a response: " + result.message());
      }
      throw HttpError("read failed: " + result.message());
    }
    auto message = parser.release();
    HttpResponse response;
    response.status = static_cast<int>(message.result_int());
    for (const auto& field : message) {
      response.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
    }
    response.body = std::move(message.body());
    response.keep_alive = message.keep_alive();
    if (!response.keep_alive) Close();
    return response;
  }

  // True when the server closes the connection (EOF or reset) within `wait`; false when data
  // arrives instead, or nothing happens within `wait` (the client then closes its end).
  bool WaitForClose(std::chrono::milliseconds wait = std::chrono::seconds(5)) {
    if (!IsOpen()) return true;
    if (buffer_.size() > 0) return false;
    boost::beast::error_code result = boost::asio::error::would_block;
    std::size_t bytes = 0;
    stream_.expires_after(wait);
    stream_.async_read_some(buffer_.prepare(1024), [&](boost::beast::error_code ec, std::size_t n) {
      result = ec;
      bytes = n;
    });
    RunIo();
    buffer_.commit(bytes);
    if (result == boost::beast::error::timeout) {
      // The stream closes itself on a timeout: the server did not.
      return false;
    }
    if (result) {
      Close();
      return true;
    }
    return false;
  }

  // Number of TCP connections opened so far (to check keep-alive).
  int connects() const { return connects_; }
  unsigned short port() const { return port_; }

  static std::string Serialize(std::string_view method, std::string_view target,
                               std::string_view body, const HttpHeaders& headers) {
    std::string out;
    out.reserve(128 + body.size());
    out.append(method).append(" ").append(target).append(" HTTP/1.1\r\n");
    bool has_host = false;
    bool has_length = false;
    for (const auto& [key, value] : headers) {
      if (boost::beast::iequals(key, "Host")) has_host = true;
      if (boost::beast::iequals(key, "Content-Length") ||
          boost::beast::iequals(key, "Transfer-Encoding")) {
        has_length = true;
      }
    }
    if (!has_host) out.append("Host: localhost\r\n");
    for (const auto& [key, value] : headers) {
      out.append(key).append(": ").append(value).append("\r\n");
    }
    const bool needs_length =
        !body.empty() || method == "POST" || method == "PUT" || method == "PATCH";
    if (!has_length && needs_length) {
      out.append("Content-Length: ").append(std::to_string(body.size())).append("\r\n");
    }
    out.append("\r\n");
    out.append(body);
    return out;
  }

 private:
  class StaleConnection : public HttpError {
   public:
    using HttpError::HttpError;
  };

  void RunIo() {
    ioc_.restart();
    ioc_.run();
  }

  std::string host_;
  unsigned short port_;
  std::chrono::milliseconds timeout_;
  boost::asio::io_context ioc_;
  boost::beast::tcp_stream stream_;
  boost::beast::flat_buffer buffer_;
  int connects_ = 0;
};

}  // namespace shopcqrs::testing
