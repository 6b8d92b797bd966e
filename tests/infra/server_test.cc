#include "infra/http/server.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include <fmt/format.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <boost/json/serialize.hpp>

#include "infra/http/json_body.h"
#include "infra/http/problem.h"
#include "support/http_client.h"

namespace shopcqrs::infra::http {
namespace {

using namespace std::chrono_literals;
using testing::HttpClient;
using testing::HttpResponse;

constexpr std::size_t kMiB = 1024 * 1024;

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    router_.Add("GET", "/hello", [](const Request&) { return Response::Json(200, R"({"hi":1})"); });
    router_.Add("POST", "/echo", [this](const Request& request) {
      ++echo_calls_;
      auto body = ParseJsonBody(request);
      if (!body) return ToResponse(body.error());
      return Response::Json(200, boost::json::serialize(*body));
    });
    router_.Add("POST", "/size", [](const Request& request) {
      return Response::Json(200, std::to_string(request.body.size()));
    });
    router_.Add("GET", "/slow", [this](const Request& request) {
      slow_started_ = true;
      const auto ms = request.Query("ms");
      std::this_thread::sleep_for(
          std::chrono::milliseconds(ms ? std::stoi(std::string(*ms)) : 300));
      slow_finished_ = true;
      return Response::Json(200, R"({"slow":true})");
    });
    router_.Add("GET", "/throw", [](const Request&) -> Response {
      throw std::runtime_error("secret internals: password=hunter2");
    });
    router_.Add("GET", "/throw-int", [](const Request&) -> Response { throw 42; });
    router_.Add("GET", "/peer", [](const Request& request) {
      return Response::Text(200, request.client_address, "text/plain");
    });
    router_.Add("GET", "/request-id", [](const Request& request) {
      return Response::Text(200, request.request_id, "text/plain");
    });
    router_.Add("GET", "/headers", [](const Request&) {
      Response response = Response::Json(200, "{}");
      response.headers.emplace_back("X-Custom", "yes");
      response.headers.emplace_back("Content-Length", "999");  // ignored: the server frames
      response.headers.emplace_back("X-Bad", "a\r\nInjected: 1");
      response.headers.emplace_back("Bad Name", "x");
      response.headers.emplace_back("", "x");
      return response;
    });
    router_.Add("GET", "/huge-header", [](const Request&) {
      Response response = Response::Json(200, "{}");
      response.headers.emplace_back("X-Huge", std::string(70000, 'h'));
      return response;
    });
  }

  void StartServer(HttpServer::Options options = {}) {
    options.host = "127.0.0.1";
    options.port = 0;
    options.io_threads = 2;
    options.worker_threads = 4;
    server_ = std::make_unique<HttpServer>(options, router_);
    server_->Start();
    ASSERT_NE(server_->port(), 0);
  }

  void TearDown() override {
    if (server_) server_->Stop();
  }

  HttpClient Client() { return HttpClient("127.0.0.1", server_->port()); }
  // StartServer(), then a client of it.
  HttpClient StartedClient() {
    StartServer();
    return Client();
  }

  Router router_;
  std::unique_ptr<HttpServer> server_;
  std::atomic<int> echo_calls_{0};
  std::atomic<bool> slow_started_{false};
  std::atomic<bool> slow_finished_{false};
};

// `client`'s connection still serves requests: it was not closed (and reopened) on the way.
void ExpectStillConnected(HttpClient& client) {
  EXPECT_EQ(client.Get("/hello").status, 200);
  EXPECT_EQ(client.connects(), 1);
}

std::string Code(const HttpResponse& response) {
  return std::string(response.Json().at("code").as_string());
}

TEST_F(ServerTest, ServesARequest) {
  StartServer();
  HttpClient client = Client();
  const HttpResponse response = client.Get("/hello");
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.body, R"({"hi":1})");
  EXPECT_EQ(response.Header("Content-Type"), "application/json");
  EXPECT_EQ(response.Header("Content-Length"), "8");
  EXPECT_TRUE(response.keep_alive);
}

TEST_F(ServerTest, KeepAliveServesManyRequestsOnOneConnection) {
  StartServer();
  HttpClient client = Client();
  for (int i = 0; i < 20; ++i) {
    const HttpResponse response = client.Post("/echo", fmt::format(R"({{"i":{}}})", i));
    ASSERT_EQ(response.status, 200);
    EXPECT_EQ(response.body, fmt::format(R"({{"i":{}}})", i));
  }
  ExpectStillConnected(client);
}

TEST_F(ServerTest, PipelinedRequestsAreAnsweredInOrder) {
  HttpClient client = StartedClient();
  client.Connect();
  client.SendRaw(
      "GET /slow?ms=150 HTTP/1.1\r\nHost: x\r\n\r\n"
      "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"
      "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
      "Content-Length: 7\r\n\r\n{\"a\":1}");
  EXPECT_EQ(client.ReadResponse().body, R"({"slow":true})");
  EXPECT_EQ(client.ReadResponse().body, R"({"hi":1})");
  EXPECT_EQ(client.ReadResponse().body, R"({"a":1})");
  ExpectStillConnected(client);
}

TEST_F(ServerTest, OversizedBodyIs413WithoutReadingIt) {
  HttpClient client = StartedClient();
  client.Connect();
  // Announce 2 MiB but send only a little of it: the answer must not wait for the rest.
  client.SendRaw(
      fmt::format("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  "Content-Length: {}\r\nX-Request-Id: big-1\r\n\r\n{}",
                  2 * kMiB, std::string(64 * 1024, ' ')));
  const HttpResponse response = client.ReadResponse();
  EXPECT_EQ(response.status, 413);
  EXPECT_EQ(Code(response), "payload_too_large");
  EXPECT_EQ(response.Header("Content-Type"), "application/problem+json");
  EXPECT_EQ(response.Header("X-Request-Id"), "big-1");
  EXPECT_FALSE(response.keep_alive);
  EXPECT_EQ(echo_calls_.load(), 0);
  // The server is still fine.
  EXPECT_EQ(Client().Get("/hello").status, 200);
}

TEST_F(ServerTest, OversizedBodySentInFullStillGets413) {
  StartServer();
  HttpClient client = Client();
  const std::string body(2 * kMiB, 'x');
  const HttpResponse response =
      client.Request("POST", "/size", body, {{"Content-Type", "application/json"}});
  EXPECT_EQ(response.status, 413);
  EXPECT_EQ(Code(response), "payload_too_large");
}

TEST_F(ServerTest, BodyOfExactlyOneMiBIsAccepted) {
  StartServer();
  HttpClient client = Client();
  const HttpResponse response = client.Request("POST", "/size", std::string(kMiB, 'x'));
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.body, std::to_string(kMiB));
}

TEST_F(ServerTest, OversizedChunkedBodyIs413) {
  HttpClient client = StartedClient();
  client.Connect();
  std::string request = "POST /size HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
  const std::string chunk(256 * 1024, 'y');
  for (int i = 0; i < 5; ++i) request += fmt::format("{:x}\r\n{}\r\n", chunk.size(), chunk);
  request += "0\r\n\r\n";
  client.SendRaw(request);
  const HttpResponse response = client.ReadResponse();
  EXPECT_EQ(response.status, 413);
  EXPECT_EQ(Code(response), "payload_too_large");
}

TEST_F(ServerTest, ChunkedBodyWithinLimitIsRead) {
  HttpClient client = StartedClient();
  client.Connect();
  client.SendRaw(
      "POST /size HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
      "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n");
  EXPECT_EQ(client.ReadResponse().body, "5");
}

TEST_F(ServerTest, ExpectContinueIsAnswered) {
  HttpClient client = StartedClient();
  client.Connect();
  client.SendRaw(
      "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
      "Content-Length: 7\r\nExpect: 100-continue\r\n\r\n");
  EXPECT_EQ(client.ReadResponse().status, 100);
  client.SendRaw(R"({"a":2})");
  const HttpResponse response = client.ReadResponse();
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.body, R"({"a":2})");
}

TEST_F(ServerTest, UnsupportedMediaTypeAndMalformedJson) {
  StartServer();
  HttpClient client = Client();
  HttpResponse response =
      client.Request("POST", "/echo", R"({"a":1})", {{"Content-Type", "text/plain"}});
  EXPECT_EQ(response.status, 415);
  EXPECT_EQ(Code(response), "unsupported_media_type");
  response = client.Request("POST", "/echo", R"({"a":1})");  // no Content-Type at all
  EXPECT_EQ(response.status, 415);
  response = client.Post("/echo", R"({"a":)");
  EXPECT_EQ(response.status, 400);
  EXPECT_EQ(Code(response), "malformed_json");
  response = client.Post("/echo", "{\"a\":\"\xff\"}");
  EXPECT_EQ(response.status, 400);
  EXPECT_EQ(Code(response), "malformed_json");
  EXPECT_EQ(client.connects(), 1);  // errors do not close the connection
}

TEST_F(ServerTest, EchoesASaneRequestId) {
  StartServer();
  HttpClient client = Client();
  HttpResponse response = client.Get("/request-id", {{"X-Request-Id", "abc-123 xyz"}});
  EXPECT_EQ(response.Header("X-Request-Id"), "abc-123 xyz");
  EXPECT_EQ(response.body, "abc-123 xyz");  // handlers see it too
  const std::string longest(200, 'r');
  response = client.Get("/request-id", {{"X-Request-Id", longest}});
  EXPECT_EQ(response.Header("X-Request-Id"), longest);
}

TEST_F(ServerTest, GeneratesARequestIdOtherwise) {
  StartServer();
  HttpClient client = Client();
  const std::regex uuid("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}");
  std::set<std::string> seen;
  for (const auto& headers :
       std::vector<testing::HttpHeaders>{{},
                                         {{"X-Request-Id", std::string(201, 'r')}},
                                         {{"X-Request-Id", "caf\xc3\xa9"}},
                                         {{"X-Request-Id", ""}}}) {
    const HttpResponse response = client.Get("/request-id", headers);
    const std::string id = response.Header("X-Request-Id");
    EXPECT_TRUE(std::regex_match(id, uuid)) << id;
    EXPECT_EQ(response.body, id);
    seen.insert(id);
  }
  EXPECT_EQ(seen.size(), 4u);
  // Error responses produced by the server itself carry one too.
  EXPECT_TRUE(std::regex_match(client.Get("/nope").Header("X-Request-Id"), uuid));
}

TEST_F(ServerTest, HandlerExceptionsAre500WithoutInternals) {
  StartServer();
  HttpClient client = Client();
  for (const char* path : {"/throw", "/throw-int"}) {
    const HttpResponse response = client.Get(path, {{"X-Request-Id", "boom-1"}});
    EXPECT_EQ(response.status, 500);
    EXPECT_EQ(Code(response), "internal_error");
    EXPECT_EQ(response.body.find("hunter2"), std::string::npos);
    EXPECT_EQ(response.body.find("secret"), std::string::npos);
    EXPECT_EQ(response.Header("X-Request-Id"), "boom-1");
  }
  ExpectStillConnected(client);
}

TEST_F(ServerTest, RoutingErrorsGoThroughTheServer) {
  StartServer();
  HttpClient client = Client();
  HttpResponse response = client.Get("/missing");
  EXPECT_EQ(response.status, 404);
  EXPECT_EQ(Code(response), "not_found");
  response = client.Request("DELETE", "/hello");
  EXPECT_EQ(response.status, 405);
  EXPECT_EQ(response.Header("Allow"), "GET, HEAD");
  response = client.Request("BREW", "/hello");
  EXPECT_EQ(response.status, 405);
}

TEST_F(ServerTest, HeadHasNoBody) {
  StartServer();
  HttpClient client = Client();
  const HttpResponse response = client.Request("HEAD", "/hello");
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.body, "");
  EXPECT_EQ(response.Header("Content-Length"), "8");
  EXPECT_EQ(client.Get("/hello").body, R"({"hi":1})");  // the connection stays in sync
  EXPECT_EQ(client.connects(), 1);
}

TEST_F(ServerTest, HandlerHeadersAreSanitised) {
  StartServer();
  HttpClient client = Client();
  const HttpResponse response = client.Get("/headers");
  EXPECT_EQ(response.Header("X-Custom"), "yes");
  EXPECT_EQ(response.Header("Content-Length"), "2");
  EXPECT_FALSE(response.HasHeader("X-Bad"));
  EXPECT_FALSE(response.HasHeader("Injected"));
  EXPECT_FALSE(response.HasHeader("Bad Name"));
}

TEST_F(ServerTest, AResponseHttpCannotCarryBecomes500) {
  StartServer();
  HttpClient client = Client();
  const HttpResponse response = client.Get("/huge-header");
  EXPECT_EQ(response.status, 500);
  EXPECT_EQ(Code(response), "internal_error");
  EXPECT_FALSE(response.HasHeader("X-Huge"));
  EXPECT_EQ(client.Get("/hello").status, 200);
}

TEST_F(ServerTest, MalformedHttpIs400AndCloses) {
  HttpClient client = StartedClient();
  client.Connect();
  client.SendRaw("THIS IS NOT HTTP\r\n\r\n");
  const HttpResponse response = client.ReadResponse();
  EXPECT_EQ(response.status, 400);
  EXPECT_EQ(Code(response), "bad_request");
  EXPECT_FALSE(response.keep_alive);
}

TEST_F(ServerTest, OversizedHeaderIs431) {
  StartServer();
  HttpClient client = Client();
  const HttpResponse response = client.Get("/hello", {{"X-Big", std::string(20000, 'h')}});
  EXPECT_EQ(response.status, 431);
  EXPECT_FALSE(response.keep_alive);
  EXPECT_EQ(Client().Get("/hello").status, 200);
}

TEST_F(ServerTest, Http10ClosesUnlessKeepAlive) {
  HttpClient client = StartedClient();
  client.Connect();
  client.SendRaw("GET /hello HTTP/1.0\r\n\r\n");
  HttpResponse response = client.ReadResponse();
  EXPECT_EQ(response.status, 200);
  EXPECT_FALSE(response.keep_alive);

  client.Connect();
  client.SendRaw("GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
  response = client.ReadResponse();
  EXPECT_TRUE(response.keep_alive);
}

TEST_F(ServerTest, ConnectionCloseIsHonoured) {
  StartServer();
  HttpClient client = Client();
  HttpResponse response = client.Get("/hello", {{"Connection", "close"}});
  EXPECT_EQ(response.status, 200);
  EXPECT_FALSE(response.keep_alive);
  EXPECT_EQ(client.Get("/hello").status, 200);  // the client reconnects
  EXPECT_EQ(client.connects(), 2);
}

TEST_F(ServerTest, IdleConnectionsTimeOut) {
  HttpServer::Options options;
  options.idle_timeout = 200ms;
  StartServer(options);
  HttpClient client = Client();
  EXPECT_EQ(client.Get("/hello").status, 200);
  EXPECT_TRUE(client.WaitForClose(3s));
}

TEST_F(ServerTest, ManyConcurrentClients) {
  StartServer();
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      HttpClient client = Client();
      for (int i = 0; i < 50; ++i) {
        const auto response = client.Post("/echo", fmt::format(R"({{"t":{},"i":{}}})", t, i));
        if (response.status == 200 && response.body == fmt::format(R"({{"t":{},"i":{}}})", t, i)) {
          ++ok;
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(ok.load(), 8 * 50);
}

TEST_F(ServerTest, StopFinishesInFlightRequestsAndClosesIdleOnes) {
  StartServer();
  HttpClient idle = Client();
  ASSERT_EQ(idle.Get("/hello").status, 200);  // now idle on keep-alive

  auto slow = std::async(std::launch::async, [&] {
    HttpClient client = Client();
    return client.Get("/slow?ms=500");
  });
  while (!slow_started_) std::this_thread::sleep_for(1ms);

  const auto stop_began = std::chrono::steady_clock::now();
  auto stopped = std::async(std::launch::async, [&] { server_->Stop(); });

  EXPECT_TRUE(idle.WaitForClose(3s));  // idle keep-alive connection closed promptly
  const HttpResponse response = slow.get();
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.body, R"({"slow":true})");
  EXPECT_FALSE(response.keep_alive);  // Connection: close during shutdown
  stopped.get();
  EXPECT_TRUE(slow_finished_);
  EXPECT_LT(std::chrono::steady_clock::now() - stop_began, 5s);

  // No longer accepting.
  HttpClient late("127.0.0.1", server_->port(), 1s);
  EXPECT_THROW(late.Get("/hello"), testing::HttpError);
  server_->Stop();  // idempotent
}

TEST_F(ServerTest, StopIsBoundedWhenAClientNeverFinishesItsRequest) {
  HttpServer::Options options;
  options.shutdown_timeout = 300ms;
  StartServer(options);
  HttpClient client = Client();
  client.Connect();
  // Header complete, body never sent: the connection is busy reading, not idle.
  client.SendRaw("POST /size HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc");
  std::this_thread::sleep_for(50ms);
  const auto begun = std::chrono::steady_clock::now();
  server_->Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - begun, 3s);
  EXPECT_TRUE(client.WaitForClose(3s));
}

TEST_F(ServerTest, RunBlocksUntilStop) {
  StartServer();
  std::atomic<bool> returned{false};
  std::thread runner([&] {
    server_->Run();
    returned = true;
  });
  HttpClient client = Client();
  EXPECT_EQ(client.Get("/hello").status, 200);
  std::this_thread::sleep_for(50ms);
  EXPECT_FALSE(returned);
  server_->Stop();
  runner.join();
  EXPECT_TRUE(returned);
}

TEST_F(ServerTest, BindFailureThrows) {
  StartServer();
  HttpServer::Options options;
  options.host = "127.0.0.1";
  options.port = server_->port();  // taken
  HttpServer second(options, router_);
  EXPECT_THROW(second.Start(), std::system_error);
}

// Credentials never reach the logs: the access log (debug) and the failure logs name the path,
// never the query string (an `access_token=` parameter) or a header.
TEST_F(ServerTest, LogsNameThePathButNeverTheQueryOrHeaders) {
  std::ostringstream captured;
  auto previous = spdlog::default_logger();
  auto logger = std::make_shared<spdlog::logger>(
      "capture", std::make_shared<spdlog::sinks::ostream_sink_mt>(captured));
  logger->set_level(spdlog::level::trace);
  spdlog::set_default_logger(logger);
  StartServer();
  {
    HttpClient client("127.0.0.1", server_->port());
    EXPECT_EQ(client
                  .Request("GET", "/hello?access_token=query-secret-1", {},
                           {{"Authorization", "Bearer header-secret-2"}})
                  .status,
              200);
    EXPECT_EQ(client.Request("GET", "/throw?access_token=query-secret-3").status, 500);
    EXPECT_EQ(client.Request("GET", "/nothing?access_token=query-secret-4").status, 404);
    const auto peer = client.Get("/peer");
    EXPECT_EQ(peer.body, "127.0.0.1");
  }
  server_->Stop();
  spdlog::set_default_logger(previous);
  const std::string log = captured.str();
  EXPECT_NE(log.find("path=/hello "), std::string::npos) << log;
  EXPECT_NE(log.find("path=/throw "), std::string::npos) << log;
  EXPECT_EQ(log.find("secret-"), std::string::npos) << log;
  EXPECT_EQ(log.find("access_token"), std::string::npos) << log;
}

}  // namespace
}  // namespace shopcqrs::infra::http
