#pragma once

// Black-box test fixture: runs the real `shopcqrs` binary and talks to it over HTTP.
//
// One service instance is shared by every test of the binary: a gtest Environment spawns it
// when the run begins (if any selected test needs it), the first test waits for its "serving"
// line, and the Environment stops it (SIGTERM, bounded wait) and removes its temporary directory
// after the last test. Tests share its databases, so they never assume an empty database and
// always use unique e-mails and SKUs (UniqueSuffix()).
//
// The service's stdout and stderr go to files in the temporary directory (shown on failure);
// stdout is polled for the "serving" line. A pipe is available (ServiceProcess::Stdout::kPipe)
// but not the default: the service dies of SIGPIPE when it logs after the pipe's reader has gone
// (see ShutdownTest.SigtermWithClosedStdoutStillStopsPostgres), leaving PostgreSQL running.
//
// Set SHOPCQRS_BLACKBOX_URL=http://HOST:PORT to run the tests against a service that is already
// running instead (useful under CTest, which runs each test in its own process, and for
// debugging). Set SHOPCQRS_BLACKBOX_KEEP=1 to keep the temporary data directory and logs.
//
// ServiceProcess can also be used on its own for tests that need a private instance (shutdown).

#include <signal.h>
#include <sys/types.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include "blackbox/shopcqrs_process.h"
#include "support/http_client.h"

namespace shopcqrs::blackbox {

using shopcqrs::testing::HttpClient;
using shopcqrs::testing::HttpError;
using shopcqrs::testing::HttpHeaders;
using shopcqrs::testing::HttpResponse;

// ---------------------------------------------------------------------------------------------
// The service process.
// ---------------------------------------------------------------------------------------------

// `shopcqrs up --data-dir <tmp>/data --listen 127.0.0.1:0` in a temporary directory of its own
// (created at construction, reused by each start, removed at destruction): stdout to
// shopcqrs.stdout.log there (truncated at each start), stderr appended to shopcqrs.stderr.log.
class ServiceProcess : public ShopcqrsProcess {
 public:
  explicit ServiceProcess(std::string name = "shopcqrs-bb") : root_(name) {}
  ~ServiceProcess() override {
    if (running()) Stop();
    CloseStdoutPipe();
    if (!running()) StopOrphanedPostgres();
  }

  // Spawns `shopcqrs up` and waits (up to `timeout`) for its "serving" line. Throws
  // std::runtime_error (with the log tails) on failure.
  void Start(std::chrono::seconds timeout = std::chrono::seconds(120),
             Stdout stdout_mode = Stdout::kFile) {
    Spawn(stdout_mode);
    WaitUntilServing(timeout);
  }

  // Spawns `shopcqrs up` without waiting. Call it from a thread that outlives the service
  // (the main thread): see ShopcqrsProcess.
  void Spawn(Stdout stdout_mode = Stdout::kFile) {
    endpoint_ = {};
    ShopcqrsProcess::Spawn({.args = {"up", "--data-dir", data_dir(), "--listen", "127.0.0.1:0"},
                            .stdout_path = stdout_path(),
                            .stderr_path = log_path(),
                            .stdout_mode = stdout_mode});
  }

  // Waits (up to `timeout`) for the "serving" line of the spawned service; any thread.
  void WaitUntilServing(std::chrono::seconds timeout = std::chrono::seconds(120)) {
    endpoint_ = ShopcqrsProcess::WaitUntilServing(timeout);
  }

  const std::string& host() const { return endpoint_.host; }
  unsigned short port() const { return endpoint_.port; }
  const std::string& root() const { return root_.path(); }
  std::string data_dir() const { return root_.data_dir(); }
  std::string log_path() const { return root() + "/shopcqrs.stderr.log"; }
  std::string stdout_path() const { return root() + "/shopcqrs.stdout.log"; }

  // The PostgreSQL postmasters the service runs under its data directory (from their
  // postmaster.pid files).
  std::vector<pid_t> PostmasterPids() const {
    std::vector<pid_t> pids;
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(data_dir(), ec)) {
      if (const pid_t pid = PostmasterPid(entry.path())) pids.push_back(pid);
    }
    return pids;
  }

  // True when `pid` is a live process whose command line names our data directory.
  bool IsOurPostgres(pid_t pid) const { return LiveAndMentions(pid, data_dir()); }

  // Fast-stops PostgreSQL servers left behind by a service that was killed.
  void StopOrphanedPostgres() { StopPostmastersUnder(data_dir()); }

 protected:
  void AfterKill() override { StopOrphanedPostgres(); }

 private:
  TempRoot root_;
  Endpoint endpoint_;
};

// ---------------------------------------------------------------------------------------------
// The shared instance.
// ---------------------------------------------------------------------------------------------

class SharedService {
 public:
  static SharedService& Instance() {
    static SharedService instance;
    return instance;
  }

  // Spawns the service now (on the calling thread, which must outlive it) if that was not done
  // yet; Get() then only waits for it.
  void Spawn() {
    std::lock_guard lock(mutex_);
    SpawnLocked();
  }

  // The endpoint of the shared service, starting it on first use. Throws when it cannot start
  // (and keeps failing fast afterwards instead of retrying for every test).
  Endpoint Get() {
    std::lock_guard lock(mutex_);
    if (endpoint_) return *endpoint_;
    if (!error_.empty()) throw std::runtime_error("the shared service failed to start earlier");
    SpawnLocked();
    if (endpoint_) return *endpoint_;
    if (!process_) throw std::runtime_error("cannot start the shared service: " + error_);
    try {
      process_->WaitUntilServing();
      endpoint_ = Endpoint{process_->host(), process_->port()};
      return *endpoint_;
    } catch (const std::exception& e) {
      error_ = e.what();
      throw;
    }
  }

  void Shutdown() {
    std::lock_guard lock(mutex_);
    if (!process_) return;
    endpoint_.reset();  // a later Get() (--gtest_repeat) starts a new instance
    const auto status = process_->Stop(SIGTERM, std::chrono::seconds(30));
    if (!status || !status->Success()) {
      std::fprintf(stderr,
                   "blackbox: the shared shopcqrs did not exit cleanly on SIGTERM (%s)\n%s\n",
                   status ? status->Describe().c_str() : "killed after 30 s",
                   process_->Diagnostics().c_str());
    }
    process_.reset();
  }

  // The endpoint of the shared service when it serves (never starts it).
  std::optional<Endpoint> Serving() {
    std::lock_guard lock(mutex_);
    return endpoint_;
  }

  // The pid of the shared service process; -1 when this binary did not start it (e.g. with
  // SHOPCQRS_BLACKBOX_URL) or it is not running.
  pid_t Pid() {
    std::lock_guard lock(mutex_);
    return process_ && process_->running() ? process_->pid() : -1;
  }

  // The root of the shared service's temporary directory ("" when this binary did not start it).
  std::string Root() {
    std::lock_guard lock(mutex_);
    return process_ ? process_->root() : std::string();
  }

  // The tails of the shared service's logs ("" when this binary did not start it).
  std::string Diagnostics(std::size_t max_bytes = 8000) {
    std::lock_guard lock(mutex_);
    return process_ ? process_->Diagnostics(max_bytes) : std::string();
  }

 private:
  SharedService() = default;

  void SpawnLocked() {
    if (endpoint_ || process_ || !error_.empty()) return;
    if (const char* url = std::getenv("SHOPCQRS_BLACKBOX_URL"); url && *url) {
      std::string rest(url);
      if (rest.starts_with("http://")) rest.erase(0, 7);
      rest = rest.substr(0, rest.find('/'));
      const auto colon = rest.rfind(':');
      endpoint_ = Endpoint{rest.substr(0, colon),
                           static_cast<unsigned short>(std::stoi(rest.substr(colon + 1)))};
      // That service's admin token (e.g. the content of its <data-dir>/admin-token).
      if (const char* token = std::getenv("SHOPCQRS_BLACKBOX_TOKEN"); token && *token) {
        shopcqrs::testing::DefaultCredentials::Set(endpoint_->port, std::string("Bearer ") + token);
      }
      return;
    }
    try {
      process_ = std::make_unique<ServiceProcess>("shopcqrs-bb");
      process_->Spawn();
    } catch (const std::exception& e) {
      error_ = e.what();
      process_.reset();
    }
  }
  std::mutex mutex_;
  std::unique_ptr<ServiceProcess> process_;
  std::optional<Endpoint> endpoint_;
  std::string error_;
};

// Whether any selected test (after --gtest_filter) belongs to a suite for which `pred(name)`.
template <typename Pred>
bool AnySelectedTestIn(Pred pred) {
  const auto* unit = ::testing::UnitTest::GetInstance();
  for (int i = 0; i < unit->total_test_suite_count(); ++i) {
    const auto* suite = unit->GetTestSuite(i);
    if (!pred(std::string_view(suite->name()))) continue;
    for (int j = 0; j < suite->total_test_count(); ++j) {
      if (suite->GetTestInfo(j)->should_run()) return true;
    }
  }
  return false;
}

// Starts the shared service in the background as soon as the run begins (so that other
// instances, such as the shutdown tests' private one, can initialise at the same time) and
// stops it after the last test.
class SharedServiceEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    // The shutdown and configuration tests run private instances of their own.
    if (!AnySelectedTestIn([](std::string_view suite) {
          return suite != "ShutdownTest" && suite != "ConfigEffectTest";
        })) {
      return;
    }
    SharedService::Instance().Spawn();  // on the main thread (see ServiceProcess::Spawn)
    prewarm_ = std::thread([] {
      try {
        SharedService::Instance().Get();  // waits for the serving line
      } catch (const std::exception&) {
        // Reported by the first test that needs the service.
      }
    });
  }
  void TearDown() override {
    if (prewarm_.joinable()) prewarm_.join();
    SharedService::Instance().Shutdown();
  }

 private:
  std::thread prewarm_;
};

inline ::testing::Environment* const kSharedServiceEnvironment =
    ::testing::AddGlobalTestEnvironment(new SharedServiceEnvironment);

// ---------------------------------------------------------------------------------------------
// HTTP helpers.
// ---------------------------------------------------------------------------------------------

struct ApiResponse {
  int status = 0;
  HttpHeaders headers;
  std::string body;
  boost::json::value json;  // null when the body is not JSON

  std::string Header(std::string_view name) const {
    for (const auto& [key, value] : headers) {
      if (boost::beast::iequals(key, name)) return value;
    }
    return {};
  }
  bool HasHeader(std::string_view name) const {
    for (const auto& [key, value] : headers) {
      if (boost::beast::iequals(key, name)) return true;
    }
    return false;
  }
  bool IsObject() const { return json.is_object(); }
  const boost::json::object& Object() const {
    static const boost::json::object kEmpty;
    return json.is_object() ? json.get_object() : kEmpty;
  }
  // A string field ("" when absent or not a string).
  std::string Str(std::string_view key) const {
    const auto* v = Object().if_contains(key);
    return v && v->is_string() ? std::string(v->get_string()) : std::string();
  }
  // An integer field (nullopt when absent or not an integer).
  std::optional<std::int64_t> Int(std::string_view key) const {
    const auto* v = Object().if_contains(key);
    if (v && v->is_int64()) return v->get_int64();
    if (v && v->is_uint64()) return static_cast<std::int64_t>(v->get_uint64());
    return std::nullopt;
  }
  std::string Code() const { return Str("code"); }
  std::string Id() const { return Str("id"); }
  std::int64_t Version() const { return Int("version").value_or(-1); }
};

// For gtest messages.
inline std::ostream& operator<<(std::ostream& out, const ApiResponse& r) {
  return out << "HTTP " << r.status << " " << r.body;
}

inline ApiResponse ToApiResponse(HttpResponse&& raw) {
  ApiResponse r;
  r.status = raw.status;
  r.body = std::move(raw.body);
  r.headers = std::move(raw.headers);
  if (!r.body.empty()) {
    boost::system::error_code ec;
    auto parsed = boost::json::parse(r.body, ec);
    if (!ec) r.json = std::move(parsed);
  }
  return r;
}

// ---------------------------------------------------------------------------------------------
// Recorded answers (OpenAPI validation).
// ---------------------------------------------------------------------------------------------

// With SHOPCQRS_BLACKBOX_RECORD=FILE, every answer received through Api is appended to FILE as
// one JSON line {"port", "method", "target", "status", "headers": {lowercase name: value},
// "body"}; at the end of the run the shared service's GET /openapi.json (asked without a token)
// is written to FILE.openapi.json. tests/blackbox/openapi_check.py then validates each answer
// against that document (the `blackbox_openapi` test).
class AnswerRecorder {
 public:
  static AnswerRecorder& Instance() {
    static AnswerRecorder recorder;
    return recorder;
  }

  bool enabled() const { return !path_.empty(); }
  const std::string& path() const { return path_; }

  // Starts the file afresh (at the beginning of a run).
  void Truncate() {
    if (!enabled()) return;
    std::lock_guard lock(mutex_);
    out_.close();
    out_.open(path_, std::ios::out | std::ios::trunc);
  }

  void Record(unsigned short port, std::string_view method, std::string_view target, int status,
              const HttpHeaders& headers, std::string_view body) {
    if (!enabled()) return;
    boost::json::object names;
    for (const auto& [key, value] : headers) {
      std::string lower(key);
      for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (!names.contains(lower)) names[lower] = value;
    }
    const boost::json::object line{{"port", port},
                                   {"method", method},
                                   {"target", target},
                                   {"status", status},
                                   {"headers", std::move(names)},
                                   {"body", body}};
    const std::string text = boost::json::serialize(line);
    std::lock_guard lock(mutex_);
    if (!out_.is_open()) out_.open(path_, std::ios::out | std::ios::app);
    out_ << text << '\n';
    out_.flush();
  }

 private:
  AnswerRecorder() {
    if (const char* path = std::getenv("SHOPCQRS_BLACKBOX_RECORD"); path && *path) path_ = path;
  }
  std::string path_;
  std::mutex mutex_;
  std::ofstream out_;
};

// One keep-alive connection to the service.
class Api {
 public:
  explicit Api(const Endpoint& endpoint,
               std::chrono::milliseconds timeout = std::chrono::seconds(20))
      : client_(endpoint.host, endpoint.port, timeout) {}
  Api() : Api(SharedService::Instance().Get()) {}

  // Any request, as given (no Content-Type added).
  ApiResponse Raw(std::string_view method, std::string_view target, std::string_view body = {},
                  const HttpHeaders& headers = {}) {
    return Recorded(method, target, client_.Request(method, target, body, headers));
  }
  // A JSON request (Content-Type: application/json unless `headers` name one).
  ApiResponse Send(std::string_view method, std::string_view target, std::string_view body,
                   const HttpHeaders& headers = {}) {
    return Recorded(method, target, client_.Json(method, target, body, headers));
  }
  ApiResponse Post(std::string_view target, std::string_view body,
                   const HttpHeaders& headers = {}) {
    return Send("POST", target, body, headers);
  }
  ApiResponse Post(std::string_view target, const boost::json::value& body,
                   const HttpHeaders& headers = {}) {
    return Send("POST", target, boost::json::serialize(body), headers);
  }
  ApiResponse Patch(std::string_view target, std::string_view body,
                    const HttpHeaders& headers = {}) {
    return Send("PATCH", target, body, headers);
  }
  ApiResponse Patch(std::string_view target, const boost::json::value& body,
                    const HttpHeaders& headers = {}) {
    return Send("PATCH", target, boost::json::serialize(body), headers);
  }
  ApiResponse Get(std::string_view target, const HttpHeaders& headers = {}) {
    return Raw("GET", target, {}, headers);
  }

  HttpClient& client() { return client_; }

 private:
  ApiResponse Recorded(std::string_view method, std::string_view target, HttpResponse&& raw) {
    AnswerRecorder::Instance().Record(client_.port(), method, target, raw.status, raw.headers,
                                      raw.body);
    return ToApiResponse(std::move(raw));
  }

  HttpClient client_;
};

// ---------------------------------------------------------------------------------------------
// Test data.
// ---------------------------------------------------------------------------------------------

// Unique across tests, threads, processes and runs against a long-lived service.
inline std::string UniqueSuffix() {
  static std::atomic<unsigned> counter{0};
  static const std::string run = [] {
    const auto now = std::chrono::system_clock::now().time_since_epoch();
    std::ostringstream out;
    out << std::hex << ::getpid() << "x"
        << (std::chrono::duration_cast<std::chrono::milliseconds>(now).count() & 0xffffffffff);
    return out.str();
  }();
  return run + "n" + std::to_string(counter.fetch_add(1));
}

inline std::string UniqueEmail(std::string_view tag = "c") {
  return std::string(tag) + "." + UniqueSuffix() + "@example.test";
}
inline std::string UniqueSku(std::string_view tag = "SKU") {
  return std::string(tag) + "-" + UniqueSuffix();
}

// A random (version 4) UUID, canonical lowercase: an id the server has never issued.
inline std::string RandomUuid() {
  static std::mutex mutex;
  static std::mt19937_64 rng{std::random_device{}()};
  std::uint64_t hi, lo;
  {
    std::lock_guard lock(mutex);
    hi = rng();
    lo = rng();
  }
  hi = (hi & 0xffffffffffff0fffULL) | 0x0000000000004000ULL;
  lo = (lo & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;
  char out[37];
  std::snprintf(out, sizeof out, "%08x-%04x-%04x-%04x-%012llx", static_cast<unsigned>(hi >> 32),
                static_cast<unsigned>((hi >> 16) & 0xffff), static_cast<unsigned>(hi & 0xffff),
                static_cast<unsigned>(lo >> 48),
                static_cast<unsigned long long>(lo & 0xffffffffffffULL));
  return out;
}

// A unique lowercase word of letters only (e.g. "qwzkbhdwpaq"), for search: `prefix`, then
// letters of UniqueSuffix() and of a random UUID (so that words of different runs never collide).
inline std::string UniqueWord(std::string_view prefix) {
  std::string word(prefix);
  for (const char c : UniqueSuffix()) word.push_back(static_cast<char>('a' + (c % 26)));
  for (const char c : RandomUuid().substr(0, 8)) word.push_back(static_cast<char>('a' + (c % 26)));
  return word;
}

// Percent-encodes everything but RFC 3986 unreserved characters.
inline std::string UrlEncode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '_' || c == '.' || c == '~') {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xf]);
    }
  }
  return out;
}

inline bool IsCanonicalUuid(std::string_view s) {
  if (s.size() != 36) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (c != '-') return false;
    } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return false;
    }
  }
  return true;
}

struct Customer {
  std::string id;
  std::string name;
  std::string email;
};

struct Product {
  std::string id;
  std::string sku;
  std::string name;
  std::int64_t price_cents = 0;
};

struct Line {
  std::string product_id;
  std::int64_t quantity = 1;
};

inline boost::json::object CustomerBody(std::string_view name, std::string_view email) {
  return {{"name", name}, {"email", email}};
}

inline boost::json::object ProductBody(std::string_view sku, std::string_view name,
                                       std::int64_t price_cents, std::int64_t stock) {
  return {{"sku", sku}, {"name", name}, {"price_cents", price_cents}, {"stock", stock}};
}

inline boost::json::object OrderBody(std::string_view customer_id, const std::vector<Line>& lines) {
  boost::json::array array;
  for (const auto& line : lines) {
    array.push_back(
        boost::json::object{{"product_id", line.product_id}, {"quantity", line.quantity}});
  }
  return {{"customer_id", customer_id}, {"lines", std::move(array)}};
}

// Creation helpers: they record a gtest failure when the service does not answer 201/200;
// callers check with ASSERT_FALSE(HasFailure()) or the returned id where it matters.
inline Customer CreateCustomer(Api& api, std::string name = "Test Customer") {
  Customer c{"", std::move(name), UniqueEmail()};
  const auto r = api.Post("/v1/customers", CustomerBody(c.name, c.email));
  EXPECT_EQ(r.status, 201) << "creating a customer: " << r;
  c.id = r.Id();
  return c;
}

inline Product CreateProduct(Api& api, std::int64_t price_cents, std::int64_t stock,
                             std::string name = "Test Product") {
  Product p{"", UniqueSku(), std::move(name), price_cents};
  const auto r = api.Post("/v1/products", ProductBody(p.sku, p.name, price_cents, stock));
  EXPECT_EQ(r.status, 201) << "creating a product: " << r;
  p.id = r.Id();
  return p;
}

inline ApiResponse PlaceOrder(Api& api, std::string_view customer_id,
                              const std::vector<Line>& lines, const HttpHeaders& headers = {}) {
  return api.Post("/v1/orders", OrderBody(customer_id, lines), headers);
}

// Places an order that must succeed; returns its id ("" on failure, with a gtest failure).
inline std::string PlaceOrderOk(Api& api, std::string_view customer_id,
                                const std::vector<Line>& lines) {
  const auto r = PlaceOrder(api, customer_id, lines);
  EXPECT_EQ(r.status, 201) << "placing an order: " << r;
  return r.Id();
}

inline ApiResponse Pay(Api& api, std::string_view order_id, std::int64_t amount_cents,
                       std::string_view reference = "pay-ref", const HttpHeaders& headers = {}) {
  return api.Post(
      "/v1/orders/" + std::string(order_id) + "/pay",
      boost::json::object{{"amount_cents", amount_cents}, {"payment_reference", reference}},
      headers);
}
inline ApiResponse Ship(Api& api, std::string_view order_id, std::string_view tracking = "TRACK-1",
                        const HttpHeaders& headers = {}) {
  return api.Post("/v1/orders/" + std::string(order_id) + "/ship",
                  boost::json::object{{"tracking_number", tracking}}, headers);
}
inline ApiResponse Deliver(Api& api, std::string_view order_id, const HttpHeaders& headers = {}) {
  return api.Post("/v1/orders/" + std::string(order_id) + "/deliver", std::string_view("{}"),
                  headers);
}
inline ApiResponse Cancel(Api& api, std::string_view order_id, std::string_view reason = "",
                          const HttpHeaders& headers = {}) {
  boost::json::object body;
  if (!reason.empty()) body["reason"] = reason;
  return api.Post("/v1/orders/" + std::string(order_id) + "/cancel", body, headers);
}
inline ApiResponse Restock(Api& api, std::string_view product_id, std::int64_t quantity,
                           const HttpHeaders& headers = {}) {
  return api.Post("/v1/products/" + std::string(product_id) + "/restock",
                  boost::json::object{{"quantity", quantity}}, headers);
}
inline ApiResponse SetPrice(Api& api, std::string_view product_id, std::int64_t price_cents,
                            const HttpHeaders& headers = {}) {
  return api.Post("/v1/products/" + std::string(product_id) + "/price",
                  boost::json::object{{"price_cents", price_cents}}, headers);
}

// ---------------------------------------------------------------------------------------------
// Assertions.
// ---------------------------------------------------------------------------------------------

// An RFC 7807 problem with that status and code.
inline ::testing::AssertionResult IsProblem(const ApiResponse& r, int status,
                                            std::string_view code) {
  auto fail = [&](std::string_view why) {
    return ::testing::AssertionFailure()
           << why << "; expected " << status << " " << code << ", got " << r;
  };
  if (r.status != status) return fail("wrong status");
  const std::string type = r.Header("Content-Type");
  if (!type.starts_with("application/problem+json")) {
    return fail("Content-Type is '" + type + "', not application/problem+json");
  }
  if (!r.IsObject()) return fail("body is not a JSON object");
  const auto& o = r.Object();
  for (const char* key : {"type", "title", "detail", "code"}) {
    const auto* v = o.if_contains(key);
    if (!v || !v->is_string()) return fail(std::string("field '") + key + "' is not a string");
  }
  if (r.Int("status") != status) return fail("body 'status' differs from the HTTP status");
  if (r.Code() != code) return fail("wrong code");
  if (r.Header("X-Request-Id").empty()) return fail("no X-Request-Id");
  return ::testing::AssertionSuccess();
}

// 400 validation_failed whose detail names `field` (when given).
inline ::testing::AssertionResult IsValidationError(const ApiResponse& r,
                                                    std::string_view field = {}) {
  auto result = IsProblem(r, 400, "validation_failed");
  if (!result) return result;
  if (!field.empty() && r.Str("detail").find(field) == std::string::npos) {
    return ::testing::AssertionFailure()
           << "detail does not name the field '" << field << "': " << r;
  }
  return ::testing::AssertionSuccess();
}

// The body is a JSON object with exactly these keys.
inline ::testing::AssertionResult HasExactKeys(const ApiResponse& r,
                                               std::initializer_list<std::string_view> keys) {
  if (!r.IsObject()) return ::testing::AssertionFailure() << "body is not a JSON object: " << r;
  std::set<std::string, std::less<>> expected(keys.begin(), keys.end());
  std::set<std::string, std::less<>> actual;
  for (const auto& kv : r.Object()) actual.emplace(kv.key());
  if (expected == actual) return ::testing::AssertionSuccess();
  auto result = ::testing::AssertionFailure() << "keys differ; expected {";
  for (const auto& k : expected) result << k << ",";
  result << "} got {";
  for (const auto& k : actual) result << k << ",";
  return result << "}: " << r;
}

// A successful command answer: status, JSON content type, id, integer version, and a
// consistency_token that is also sent as X-Consistency-Token.
inline ::testing::AssertionResult IsCommandSuccess(const ApiResponse& r, int status,
                                                   std::int64_t version) {
  auto fail = [&](std::string_view why) {
    return ::testing::AssertionFailure()
           << why << "; expected " << status << " version " << version << ", got " << r;
  };
  if (r.status != status) return fail("wrong status");
  if (!r.Header("Content-Type").starts_with("application/json"))
    return fail("not application/json");
  if (!r.IsObject()) return fail("body is not a JSON object");
  if (!IsCanonicalUuid(r.Id())) return fail("id is not a canonical UUID string");
  if (r.Int("version") != version) return fail("wrong or non-integer version");
  const auto* token = r.Object().if_contains("consistency_token");
  if (!token || !token->is_string() || token->get_string().empty()) {
    return fail("consistency_token missing or not a non-empty string");
  }
  if (r.Header("X-Consistency-Token") != std::string_view(token->get_string())) {
    return fail("X-Consistency-Token header differs from the body's consistency_token");
  }
  if (r.Header("X-Request-Id").empty()) return fail("no X-Request-Id");
  return ::testing::AssertionSuccess();
}

// Truncates the recorded answers when the run begins, and writes the shared service's
// /openapi.json beside them when it ends (before the service stops: environments are torn
// down in the reverse order of their registration).
class AnswerRecorderEnvironment : public ::testing::Environment {
 public:
  void SetUp() override { AnswerRecorder::Instance().Truncate(); }
  void TearDown() override {
    if (!AnswerRecorder::Instance().enabled()) return;
    const auto endpoint = SharedService::Instance().Serving();
    if (!endpoint) return;
    try {
      Api api(*endpoint);
      const ApiResponse r = api.Get("/openapi.json", {{"Authorization", ""}});
      if (r.status != 200) {
        std::fprintf(stderr, "blackbox: GET /openapi.json answered %d\n", r.status);
        return;
      }
      std::ofstream(AnswerRecorder::Instance().path() + ".openapi.json",
                    std::ios::out | std::ios::trunc)
          << r.body;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "blackbox: cannot fetch /openapi.json: %s\n", e.what());
    }
  }
};

inline ::testing::Environment* const kAnswerRecorderEnvironment =
    ::testing::AddGlobalTestEnvironment(new AnswerRecorderEnvironment);

// Base fixture: fails (with the service log) when the shared service cannot start.
class BlackboxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    try {
      endpoint_ = SharedService::Instance().Get();
    } catch (const std::exception& e) {
      GTEST_FAIL() << "cannot start the service: " << e.what();
    }
    api_ = std::make_unique<Api>(endpoint_);
  }

  Api& api() { return *api_; }
  const Endpoint& endpoint() const { return endpoint_; }
  std::unique_ptr<Api> NewApi() const { return std::make_unique<Api>(endpoint_); }

  Endpoint endpoint_;
  std::unique_ptr<Api> api_;
};

}  // namespace shopcqrs::blackbox
