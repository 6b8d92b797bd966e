// Black-box fault test: a private `shopcqrs up` (own data directory, own listen port; the
// suite's shared service is not touched) runs a mixed command and query load over HTTP while
// this test kills, with SIGKILL and several times each, the write postmaster, the read
// postmaster, redis-server, nats-server and the `up` process itself (then starts `up` again on
// the same data directory and address).
//
// Every command carries an Idempotency-Key and is retried with it (same body, back-off) until it
// gets a definitive answer (2xx or 4xx; transport errors and 503 are retried), so the client
// knows exactly what it did; "lost" is an acknowledged effect missing from a read store,
// "duplicated" one applied twice. Each writer thread owns its customers, orders and the products
// it added (orders of every writer use every product), so right after a command it knows the
// exact state of what it owns and checks that a query sent with that command's consistency token
// never answers anything older (nor newer).
//
// After each kill: the service must take a new command, and every projection must be 0 events
// behind the write database (/v1/admin/projections) -- the recovery time. After the last one the
// load stops, every projection catches up, and every read store is compared with what the
// acknowledged commands imply: order views, customer statistics and histories, product sales,
// top sellers (Redis), search and daily sales.
//
// Environment: SHOPCQRS_FAULT_KILLS=N kills per kind (default 2), SHOPCQRS_FAULT_KINDS=a,b,...
// (default write_pg,read_pg,redis,nats,up), SHOPCQRS_FAULT_SEED (default 20261201),
// SHOPCQRS_FAULT_REPORT=path writes the counts as JSON (scripts/fault-matrix.sh).
// Running this test alone, SHOPCQRS_BLACKBOX_URL=http://127.0.0.1:1 keeps the suite's
// environment from starting the shared service this test does not use.

#include <gtest/gtest.h>

#include <signal.h>
#include <sys/types.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <deque>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <boost/json.hpp>

#include "blackbox/fault_support.h"
#include "blackbox/service_fixture.h"

namespace shopcqrs::blackbox {
namespace {

namespace json = boost::json;
using Clock = std::chrono::steady_clock;
using SystemClock = std::chrono::system_clock;
using namespace std::chrono_literals;
using fault::UpInstance;

constexpr std::array<std::string_view, 5> kAllKinds = {"write_pg", "read_pg", "redis", "nats",
                                                       "up"};

constexpr int kWriters = 3;
constexpr std::int64_t kInitialStock = 1'000'000;
constexpr int kMaxOrdersPerCustomer = 30;  // so that a customer's search fits in one page
constexpr std::size_t kMaxProducts = 60;   // so that the top list (limit 100) holds them all
constexpr auto kCommandDeadline = 90s;     // a command without a definitive answer by then fails
constexpr auto kRecoveryDeadline = 90s;    // kill -> caught up
constexpr auto kUnderLoadWindow = 5s;      // then the writers pause until 0 behind is seen
constexpr auto kWarmUp = 1500ms;           // load before the first kill
constexpr int kLoadBetweenKillsMinMs = 400;
constexpr int kLoadBetweenKillsMaxMs = 900;
constexpr int kThinkMinMs = 2;  // writers pause this long (uniform) between commands
constexpr int kThinkMaxMs = 12;
constexpr const char* kTokenWaitMs = "2000";

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

bool IsInt(const json::value* v) { return v && (v->is_int64() || v->is_uint64()); }
std::int64_t IntOf(const json::object& o, std::string_view key, std::int64_t fallback = -1) {
  const auto* v = o.if_contains(key);
  if (!IsInt(v)) return fallback;
  return v->is_int64() ? v->get_int64() : static_cast<std::int64_t>(v->get_uint64());
}
std::string StrOf(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  if (!v) return "<absent>";
  if (v->is_null()) return "null";
  return v->is_string() ? std::string(v->get_string()) : json::serialize(*v);
}
const json::array* ItemsOf(const ApiResponse& r) {
  const auto* items = r.Object().if_contains("items");
  return items && items->is_array() ? &items->as_array() : nullptr;
}

// "2026-11-26T18:23:16.123Z" -> time point (nullopt when it does not parse).
std::optional<SystemClock::time_point> ParseTimestamp(const std::string& text) {
  std::tm tm{};
  int millis = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ", &tm.tm_year, &tm.tm_mon,
                  &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &millis) != 7) {
    return std::nullopt;
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return SystemClock::from_time_t(::timegm(&tm)) + std::chrono::milliseconds(millis);
}

// A 503 must be an RFC 7807 problem with Retry-After (API.md); "" when `r` is fine.
std::string BadUnavailable(const ApiResponse& r) {
  if (!r.Header("Content-Type").starts_with("application/problem+json")) {
    return "a 503 that is not application/problem+json";
  }
  if (r.Code().empty() || r.Int("status") != 503) return "a 503 without code and status";
  if (r.Header("Retry-After").empty()) return "a 503 without Retry-After";
  return {};
}

// ---------------------------------------------------------------------------------------------
// Configuration.
// ---------------------------------------------------------------------------------------------

struct Options {
  int kills_per_kind = 2;
  std::vector<std::string> kinds;
  std::uint64_t seed = 20261201;
  std::string report_path;
  std::string error;  // a bad setting

  static Options FromEnvironment() {
    Options o;
    o.kills_per_kind = static_cast<int>(fault::EnvLong("SHOPCQRS_FAULT_KILLS", 2));
    if (o.kills_per_kind < 0 || o.kills_per_kind > 1000) o.error = "SHOPCQRS_FAULT_KILLS: 0..1000";
    o.seed = static_cast<std::uint64_t>(fault::EnvLong("SHOPCQRS_FAULT_SEED", 20261201));
    o.report_path = fault::EnvString("SHOPCQRS_FAULT_REPORT");
    const std::string kinds = fault::EnvString("SHOPCQRS_FAULT_KINDS");
    if (kinds.empty()) {
      for (const auto kind : kAllKinds) o.kinds.emplace_back(kind);
    } else {
      std::istringstream in(kinds);
      std::string kind;
      while (std::getline(in, kind, ',')) {
        if (kind.empty()) continue;
        if (std::find(kAllKinds.begin(), kAllKinds.end(), kind) == kAllKinds.end()) {
          o.error = "SHOPCQRS_FAULT_KINDS: unknown kind '" + kind + "'";
        } else if (std::find(o.kinds.begin(), o.kinds.end(), kind) == o.kinds.end()) {
          o.kinds.push_back(kind);
        }
      }
    }
    return o;
  }
};

// ---------------------------------------------------------------------------------------------
// Bookkeeping shared by the threads.
// ---------------------------------------------------------------------------------------------

// Failures found on worker threads, by category; the first few of each are reported in full
// on the test thread.
class Problems {
 public:
  void Add(const std::string& category, std::string what) {
    std::lock_guard lock(mutex_);
    auto& entry = entries_[category];
    ++entry.count;
    if (entry.first.size() < 8) entry.first.push_back(std::move(what));
  }
  int Count(const std::string& category) const {
    std::lock_guard lock(mutex_);
    const auto it = entries_.find(category);
    return it == entries_.end() ? 0 : it->second.count;
  }
  void Report() const {
    std::lock_guard lock(mutex_);
    for (const auto& [category, entry] : entries_) {
      for (const auto& what : entry.first) ADD_FAILURE() << category << ": " << what;
      if (entry.count > static_cast<int>(entry.first.size())) {
        ADD_FAILURE() << category << ": ... and "
                      << entry.count - static_cast<int>(entry.first.size()) << " more";
      }
    }
  }

 private:
  struct Entry {
    int count = 0;
    std::vector<std::string> first;
  };
  mutable std::mutex mutex_;
  std::map<std::string, Entry> entries_;
};

// What happened between one kill and the next (window 0: before the first kill).
struct WindowCounters {
  std::atomic<int> acknowledged{0};      // commands answered 2xx
  std::atomic<int> retried{0};           // of those, commands that needed more than one attempt
  std::atomic<int> transport_errors{0};  // attempts without an HTTP answer
  std::atomic<int> unavailable{0};       // 503 answers to commands
  std::atomic<int> token_queries{0};     // queries with a consistency token that got an answer
  std::atomic<int> token_behind{0};      // of those, 503 read_model_behind
  std::atomic<int> stale{0};             // answers older (or newer) than their token implies
};

// ---------------------------------------------------------------------------------------------
// The client's model of what it did.
// ---------------------------------------------------------------------------------------------

struct FCustomer {
  std::string id, name, email, word;  // `word`: unique, in every name the customer has
  std::int64_t version = 1;
  std::vector<int> windows;  // windows[v - 1]: the window in which version v was acknowledged
  int orders = 0;            // placed, cancelled or not
  std::int64_t order_count = 0, lifetime_value = 0;
  bool uncertain = false;  // a command on it had no definitive or an unexpected answer
};

struct FProduct {
  std::string id, sku, name;
  std::int64_t price = 0, initial_stock = 0, restocked = 0;
  std::int64_t version = 1;
  std::vector<int> windows;
  int owner = -1;  // writer index; -1: the test thread (probes)
  // A command that touched it had no definitive or an unexpected answer (any writer sets it:
  // orders of every writer use every product).
  std::atomic<bool> uncertain{false};
};

struct FLine {
  FProduct* product = nullptr;
  std::int64_t quantity = 1;
};

struct FOrder {
  std::string id;
  FCustomer* customer = nullptr;
  std::vector<FLine> lines;
  std::int64_t total = 0, version = 1;
  std::string status = "placed", payment_reference, tracking_number, cancel_reason;
  std::vector<int> windows;
  std::string placed_day, paid_day, cancelled_day;  // UTC, "" when not (yet) / ambiguous
  bool refunded = false;
  bool uncertain = false;
};

bool CountsForCustomer(const FOrder& o) { return o.status != "cancelled"; }
bool Sold(const FOrder& o) {
  return o.status == "paid" || o.status == "shipped" || o.status == "delivered";
}

struct Writer {
  int index = 0;
  std::mt19937_64 rng;
  Api api;
  std::deque<FCustomer> customers;
  std::vector<FCustomer*> active_customers;  // fewer than kMaxOrdersPerCustomer orders
  std::vector<FProduct*> own_products;
  std::deque<FOrder> orders;
  std::vector<FOrder*> active_orders;                      // not delivered or cancelled
  std::map<const FProduct*, std::int64_t> reserved, sold;  // by this writer's orders
  std::int64_t placed = 0, paid = 0;                       // orders placed, payments made
  int sequence = 0;
  int words = 0;

  Writer(int i, std::uint64_t seed, const Endpoint& endpoint)
      : index(i), rng(seed + 7919u * static_cast<std::uint64_t>(i + 1)), api(endpoint, 30s) {}

  std::size_t Pick(std::size_t n) {
    return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng);
  }
  bool Chance(int percent) { return static_cast<int>(Pick(100)) < percent; }
  // A lowercase word unique to this run (letters only: it must match nothing but its customer).
  std::string Word() {
    std::string word = "fq";
    word.push_back(static_cast<char>('a' + index));
    for (int i = 0; i < 9; ++i) word.push_back(static_cast<char>('g' + Pick(20)));
    word += std::string(1, static_cast<char>('a' + (words / 26) % 26)) +
            static_cast<char>('a' + words % 26);
    ++words;
    return word;
  }
  std::string Key() { return "fault-w" + std::to_string(index) + "-" + std::to_string(++sequence); }
};

// Where the verification found what (main thread only).
class Ledger {
 public:
  explicit Ledger(std::function<std::string(int)> kind_of) : kind_of_(std::move(kind_of)) {}
  void Lost(int window, const std::string& what, int n = 1) {
    lost_ += n;
    lost_by_kind_[kind_of_(window)] += n;
    Example("lost", what);
  }
  void Duplicated(int window, const std::string& what, int n = 1) {
    duplicated_ += n;
    duplicated_by_kind_[kind_of_(window)] += n;
    Example("duplicated", what);
  }
  void Mismatch(const std::string& what) {
    ++mismatched_;
    Example("mismatched", what);
  }
  // Compares an observed version with the model's: missing versions are lost effects (each
  // attributed to the window its command was acknowledged in), extra ones duplicated. True when
  // they are equal.
  bool Versions(const std::string& what, std::int64_t observed, std::int64_t expected,
                const std::vector<int>& windows) {
    if (observed < expected) {
      for (std::int64_t v = std::max<std::int64_t>(observed, 0) + 1; v <= expected; ++v) {
        const auto i = static_cast<std::size_t>(v - 1);
        Lost(i < windows.size() ? windows[i] : -1,
             what + ": version " + std::to_string(observed) + ", want " + std::to_string(expected));
      }
      return false;
    }
    if (observed > expected) {
      Duplicated(
          windows.empty() ? -1 : windows.back(),
          what + ": version " + std::to_string(observed) + ", want " + std::to_string(expected),
          static_cast<int>(observed - expected));
      return false;
    }
    return true;
  }
  // A count or sum that must equal `expected`: less is lost, more duplicated (not attributable).
  void Amount(const std::string& what, std::int64_t observed, std::int64_t expected) {
    if (observed < expected)
      Lost(-1, what + ": " + std::to_string(observed) + ", want " + std::to_string(expected));
    if (observed > expected)
      Duplicated(-1, what + ": " + std::to_string(observed) + ", want " + std::to_string(expected));
  }
  int lost() const { return lost_; }
  int duplicated() const { return duplicated_; }
  int mismatched() const { return mismatched_; }
  int LostFor(const std::string& kind) const { return Get(lost_by_kind_, kind); }
  int DuplicatedFor(const std::string& kind) const { return Get(duplicated_by_kind_, kind); }
  void Report() const {
    for (const auto& e : examples_) ADD_FAILURE() << e;
    if (lost_ + duplicated_ + mismatched_ > static_cast<int>(examples_.size())) {
      ADD_FAILURE() << "... " << lost_ << " lost, " << duplicated_ << " duplicated, " << mismatched_
                    << " mismatched in all";
    }
  }

 private:
  static int Get(const std::map<std::string, int>& m, const std::string& k) {
    const auto it = m.find(k);
    return it == m.end() ? 0 : it->second;
  }
  void Example(const char* what, const std::string& detail) {
    if (examples_.size() < 30) examples_.push_back(std::string(what) + ": " + detail);
  }
  std::function<std::string(int)> kind_of_;
  int lost_ = 0, duplicated_ = 0, mismatched_ = 0;
  std::map<std::string, int> lost_by_kind_, duplicated_by_kind_;
  std::vector<std::string> examples_;
};

// One kill and what it took to recover from it.
struct KillRecord {
  std::string kind;
  pid_t old_pid = -1, new_pid = -1;
  double restart_s = -1;    // kill -> a new process of that kind (up: serving again)
  double writable_s = -1;   // kill -> a command sent after the kill acknowledged
  double recovery_s = -1;   // kill -> every projection 0 events behind
  bool held = false;        // the writers had to pause before 0 behind was seen
  int commands_before = 0;  // acknowledged before the kill
  SystemClock::time_point at;
};

// ---------------------------------------------------------------------------------------------
// The run.
// ---------------------------------------------------------------------------------------------

class FaultRun {
 public:
  explicit FaultRun(Options options) : options_(std::move(options)), rng_(options_.seed) {
    for (int round = 0; round < options_.kills_per_kind; ++round) {
      std::vector<std::string> kinds = options_.kinds;
      std::shuffle(kinds.begin(), kinds.end(), rng_);
      schedule_.insert(schedule_.end(), kinds.begin(), kinds.end());
    }
    windows_ = std::make_unique<WindowCounters[]>(schedule_.size() + 1);
  }

  void Run() {
    const auto started = Clock::now();
    start_day_ = fault::UtcDate(SystemClock::now());
    try {
      up_.Start();
    } catch (const std::exception& e) {
      GTEST_FAIL() << "cannot start shopcqrs up: " << e.what();
    }
    std::printf(
        "[          ] shopcqrs up on %s:%u, data %s; %zu kills (%d per kind of %zu), seed %llu\n",
        up_.host().c_str(), up_.port(), up_.data_dir().c_str(), schedule_.size(),
        options_.kills_per_kind, options_.kinds.size(),
        static_cast<unsigned long long>(options_.seed));
    control_ = std::make_unique<Api>(up_.endpoint(), 30s);
    admin_ = std::make_unique<Api>(up_.endpoint(), 5s);

    Seed();
    if (::testing::Test::HasFatalFailure() || ::testing::Test::HasFailure()) return Finish(started);

    std::vector<std::thread> threads;
    for (auto& w : writers_) threads.emplace_back([this, &w] { WriterLoop(*w); });
    threads.emplace_back([this] { ReaderLoop(); });

    std::this_thread::sleep_for(kWarmUp);
    bool recovered = true;
    for (std::size_t k = 0; k < schedule_.size() && recovered; ++k) {
      recovered = KillAndRecover(k);
      // Load after each recovery (the last one too: its window gets commands of its own).
      if (recovered) {
        std::this_thread::sleep_for(std::chrono::milliseconds(std::uniform_int_distribution<int>(
            kLoadBetweenKillsMinMs, kLoadBetweenKillsMaxMs)(rng_)));
      }
    }
    if (schedule_.empty()) std::this_thread::sleep_for(2s);  // SHOPCQRS_FAULT_KILLS=0: load only
    stop_ = true;
    hold_ = false;
    for (auto& t : threads) t.join();
    load_s_ = Seconds(Clock::now() - started);

    if (recovered) Verify();
    Finish(started);
  }

 private:
  // ---- commands and queries ----

  struct Acked {
    ApiResponse r;
    int window = 0;
  };

  int Window() const { return window_.load(); }
  WindowCounters& Counters() { return windows_[static_cast<std::size_t>(Window())]; }

  // Sends the command until it gets a definitive answer (2xx or 4xx): a transport error or a
  // 503 is retried with the same Idempotency-Key and body, with back-off. nullopt when no
  // definitive answer came within kCommandDeadline (recorded as a problem).
  std::optional<Acked> Command(Api& api, std::mt19937_64& rng, std::string_view method,
                               const std::string& target, const json::value& body,
                               const std::string& key) {
    const std::string text = json::serialize(body);
    const auto deadline = Clock::now() + kCommandDeadline;
    std::string last = "nothing";
    for (int attempt = 1;; ++attempt) {
      std::optional<ApiResponse> r;
      try {
        r = api.Send(method, target, text, {{"Idempotency-Key", key}});
      } catch (const std::exception& e) {
        Counters().transport_errors.fetch_add(1);
        last = std::string("transport error: ") + e.what();
      }
      if (r && r->status < 500) {
        const int window = Window();
        if (r->status < 300) {
          windows_[static_cast<std::size_t>(window)].acknowledged.fetch_add(1);
          if (attempt > 1) windows_[static_cast<std::size_t>(window)].retried.fetch_add(1);
        }
        return Acked{std::move(*r), window};
      }
      if (r && r->status == 503) {
        Counters().unavailable.fetch_add(1);
        if (const auto bad = BadUnavailable(*r); !bad.empty()) {
          problems_.Add("bad 503",
                        std::string(method) + " " + target + ": " + bad + ": " + r->body);
        }
        last = "503 " + r->body;
      } else if (r) {
        problems_.Add("server error", std::string(method) + " " + target + " answered " +
                                          std::to_string(r->status) + ": " + r->body);
        last = std::to_string(r->status) + " " + r->body;
      }
      if (Clock::now() >= deadline) {
        problems_.Add("unanswered", std::string(method) + " " + target + " (key " + key +
                                        "): no definitive answer in " +
                                        std::to_string(kCommandDeadline.count()) +
                                        " s; last: " + last);
        return std::nullopt;
      }
      const int cap = std::min(1000, 25 << std::min(attempt, 6));
      std::this_thread::sleep_for(
          std::chrono::milliseconds(cap / 2 + static_cast<int>(rng() % (cap / 2 + 1))));
    }
  }

  // A command answer that is not what the model expects.
  void Unexpected(const std::string& what, const std::optional<Acked>& a) {
    uncertain_ = true;
    if (a)
      problems_.Add("unexpected answer",
                    what + ": HTTP " + std::to_string(a->r.status) + " " + a->r.body);
  }

  // A query with a consistency token: the answer, or nullopt when the read store was behind
  // (503) or the service did not answer (both fine: the test only judges answers).
  std::optional<ApiResponse> TokenQuery(Api& api, const std::string& target,
                                        const std::string& token) {
    std::optional<ApiResponse> r;
    try {
      r = api.Get(target,
                  {{"X-Consistency-Token", token}, {"X-Consistency-Wait-Ms", kTokenWaitMs}});
    } catch (const std::exception&) {
      return std::nullopt;
    }
    Counters().token_queries.fetch_add(1);
    if (r->status == 503) {
      Counters().token_behind.fetch_add(1);
      if (const auto bad = BadUnavailable(*r); !bad.empty()) {
        problems_.Add("bad 503", "GET " + target + ": " + bad + ": " + r->body);
      }
      return std::nullopt;
    }
    if (r->status >= 500) {
      problems_.Add("server error",
                    "GET " + target + " answered " + std::to_string(r->status) + ": " + r->body);
      return std::nullopt;
    }
    return r;
  }

  void Stale(const std::string& what) {
    Counters().stale.fetch_add(1);
    problems_.Add("stale read", what);
  }

  // ---- read-your-writes checks, right after the writer's own command ----

  void CheckOrder(Writer& w, const FOrder& o, const std::string& token) {
    const auto r = TokenQuery(w.api, "/v1/orders/" + o.id, token);
    if (!r) return;
    const std::string what = "GET /v1/orders/" + o.id + " with the token of version " +
                             std::to_string(o.version) + " (" + o.status + ")";
    if (r->status != 200 || r->Version() != o.version || r->Str("status") != o.status) {
      Stale(what + ": HTTP " + std::to_string(r->status) + " " + r->body);
    }
  }

  void CheckCustomer(Writer& w, const FCustomer& c, const std::string& token) {
    const auto r = TokenQuery(w.api, "/v1/customers/" + c.id, token);
    if (!r) return;
    if (r->status != 200 || r->Version() != c.version || r->Str("name") != c.name ||
        r->Int("order_count") != c.order_count ||
        r->Int("lifetime_value_cents") != c.lifetime_value) {
      Stale("GET /v1/customers/" + c.id + " with a token: want version " +
            std::to_string(c.version) + ", order_count " + std::to_string(c.order_count) +
            ", lifetime_value_cents " + std::to_string(c.lifetime_value) + "; got HTTP " +
            std::to_string(r->status) + " " + r->body);
    }
  }

  void CheckProduct(Writer& w, const FProduct& p, const std::string& token) {
    const auto r = TokenQuery(w.api, "/v1/products/" + p.id, token);
    if (!r) return;
    std::string why;
    if (r->status != 200) {
      why = "not found";
    } else {
      const std::int64_t sold = w.sold[&p];
      if (r->Int("units_sold").value_or(-1) < sold) why += "units_sold below this writer's own; ";
      if (p.owner == w.index) {
        if (r->Version() != p.version) why += "version differs; ";
        if (r->Int("stock").value_or(-1) > p.initial_stock + p.restocked - w.reserved[&p]) {
          why += "stock above what this writer's own reservations leave; ";
        }
      }
      if (!why.empty()) {
        why += "this writer: version " + std::to_string(p.version) + ", sold " +
               std::to_string(sold) + ", reserved " + std::to_string(w.reserved[&p]);
      }
    }
    if (!why.empty()) {
      Stale("GET /v1/products/" + p.id + " with a token: " + why + "; got HTTP " +
            std::to_string(r->status) + " " + r->body);
    }
  }

  void CheckSearch(Writer& w, const FOrder& o, const std::string& token) {
    const auto r = TokenQuery(w.api, "/v1/search/orders?limit=100&q=" + o.customer->word, token);
    if (!r) return;
    const auto* items = ItemsOf(*r);
    bool found = false;
    if (items) {
      for (const auto& item : *items) {
        if (!item.is_object() || StrOf(item.as_object(), "id") != o.id) continue;
        found = IntOf(item.as_object(), "version") == o.version &&
                StrOf(item.as_object(), "status") == o.status;
      }
    }
    if (r->status != 200 || !found) {
      Stale("search for " + o.customer->word + " with the token of order " + o.id + " version " +
            std::to_string(o.version) + ": HTTP " + std::to_string(r->status) + " " +
            r->body.substr(0, 2000));
    }
  }

  void CheckTop(Writer& w, const FProduct& p, const std::string& token) {
    const auto r = TokenQuery(w.api, "/v1/products/top?limit=100", token);
    if (!r) return;
    const auto* items = ItemsOf(*r);
    std::int64_t units = -1;
    if (items) {
      for (const auto& item : *items) {
        if (item.is_object() && StrOf(item.as_object(), "product_id") == p.id) {
          units = IntOf(item.as_object(), "units_sold");
        }
      }
    }
    if (r->status != 200 || units < w.sold[&p]) {
      Stale("top sellers with a token: product " + p.id + " units_sold " + std::to_string(units) +
            ", this writer alone sold " + std::to_string(w.sold[&p]));
    }
  }

  void CheckDaily(Writer& w, const std::string& token) {
    const auto r = TokenQuery(w.api, DailyTarget(), token);
    if (!r) return;
    std::int64_t placed = 0, paid = 0;
    if (const auto* items = ItemsOf(*r)) {
      for (const auto& item : *items) {
        if (!item.is_object()) continue;
        placed += IntOf(item.as_object(), "orders_placed", 0);
        paid += IntOf(item.as_object(), "orders_paid", 0);
      }
    }
    if (r->status != 200 || placed < w.placed || paid < w.paid) {
      Stale("daily sales with a token: orders_placed " + std::to_string(placed) + ", orders_paid " +
            std::to_string(paid) + "; this writer alone placed " + std::to_string(w.placed) +
            " and paid " + std::to_string(w.paid));
    }
  }

  // Daily sales from the day before the run started to the day after today.
  std::string DailyTarget() const {
    return DailyTarget(start_day_, fault::UtcDate(SystemClock::now()));
  }

  // ---- seed ----

  void Seed() {
    for (int i = 0; i < kWriters; ++i) {
      writers_.push_back(std::make_unique<Writer>(i, options_.seed, up_.endpoint()));
    }
    for (auto& w : writers_) {
      for (int i = 0; i < 2; ++i) {
        if (!AddProduct(*w)) return Fail("seeding products");
        if (!RegisterCustomer(*w)) return Fail("seeding customers");
      }
    }
    // The probe product: restocked by this thread after each kill.
    probe_ = std::make_unique<FProduct>();
    probe_->sku = "FAULT-PROBE";
    probe_->name = "Fault probe";
    probe_->price = 1;
    probe_->initial_stock = kInitialStock;
    const auto a = Command(*control_, rng_, "POST", "/v1/products",
                           ProductBody(probe_->sku, probe_->name, probe_->price, kInitialStock),
                           "fault-probe-add");
    if (!a || !IsCommandSuccess(a->r, 201, 1)) return Fail("adding the probe product");
    probe_->id = a->r.Id();
    probe_->windows.push_back(a->window);
    // Everything seeded is visible before the load starts.
    std::string why;
    if (!WaitCaughtUp(Clock::now() + 60s, &why)) Fail("seed not projected: " + why);
  }

  void Fail(const std::string& what) { ADD_FAILURE() << what << "\n" << up_.Diagnostics(); }

  // ---- the writers' operations ----

  bool RegisterCustomer(Writer& w) {
    FCustomer c;
    c.word = w.Word();
    c.name = "Fault " + c.word + " r0";
    c.email = "fault." + c.word + "@example.test";
    const auto a =
        Command(w.api, w.rng, "POST", "/v1/customers", CustomerBody(c.name, c.email), w.Key());
    if (!a || !IsCommandSuccess(a->r, 201, 1)) {
      Unexpected("registering a customer", a);
      return false;
    }
    c.id = a->r.Id();
    c.windows.push_back(a->window);
    w.customers.push_back(std::move(c));
    FCustomer& stored = w.customers.back();
    w.active_customers.push_back(&stored);
    if (w.Chance(50)) CheckCustomer(w, stored, a->r.Header("X-Consistency-Token"));
    return true;
  }

  void RenameCustomer(Writer& w) {
    FCustomer& c = *w.active_customers[w.Pick(w.active_customers.size())];
    const std::string name = "Fault " + c.word + " r" + std::to_string(c.version);
    const auto a = Command(w.api, w.rng, "PATCH", "/v1/customers/" + c.id,
                           json::object{{"name", name}}, w.Key());
    if (!a || !IsCommandSuccess(a->r, 200, c.version + 1)) {
      c.uncertain = true;
      std::erase(w.active_customers, &c);
      return Unexpected("renaming customer " + c.id, a);
    }
    c.name = name;
    ++c.version;
    c.windows.push_back(a->window);
    if (w.Chance(50)) CheckCustomer(w, c, a->r.Header("X-Consistency-Token"));
  }

  bool AddProduct(Writer& w) {
    auto p = std::make_unique<FProduct>();
    const int n = static_cast<int>(w.own_products.size());
    p->sku = "FAULT-" + std::to_string(w.index) + "-" + std::to_string(n);
    p->name = "Fault Widget " + std::to_string(w.index) + "-" + std::to_string(n);
    p->price = 100 + static_cast<std::int64_t>(w.Pick(900));
    p->initial_stock = kInitialStock;
    p->owner = w.index;
    const auto a = Command(w.api, w.rng, "POST", "/v1/products",
                           ProductBody(p->sku, p->name, p->price, p->initial_stock), w.Key());
    if (!a || !IsCommandSuccess(a->r, 201, 1) || a->r.Int("stock") != p->initial_stock) {
      products_uncertain_ = true;
      Unexpected("adding a product", a);
      return false;
    }
    p->id = a->r.Id();
    p->windows.push_back(a->window);
    FProduct* stored = p.get();
    {
      std::lock_guard lock(products_mutex_);
      products_.push_back(std::move(p));
    }
    w.own_products.push_back(stored);
    if (w.Chance(50)) CheckProduct(w, *stored, a->r.Header("X-Consistency-Token"));
    return true;
  }

  void Restock(Writer& w) {
    FProduct& p = *w.own_products[w.Pick(w.own_products.size())];
    if (p.uncertain) return;
    const auto quantity = static_cast<std::int64_t>(1 + w.Pick(50));
    const auto a = Command(w.api, w.rng, "POST", "/v1/products/" + p.id + "/restock",
                           json::object{{"quantity", quantity}}, w.Key());
    if (!a || !IsCommandSuccess(a->r, 200, p.version + 1)) {
      p.uncertain = true;
      return Unexpected("restocking product " + p.id, a);
    }
    ++p.version;
    p.restocked += quantity;
    p.windows.push_back(a->window);
    if (w.Chance(50)) CheckProduct(w, p, a->r.Header("X-Consistency-Token"));
  }

  void PlaceOrder(Writer& w) {
    if (w.active_customers.empty()) return;
    FCustomer& c = *w.active_customers[w.Pick(w.active_customers.size())];
    FOrder o;
    o.customer = &c;
    {
      std::lock_guard lock(products_mutex_);
      const std::size_t lines = 1 + w.Pick(std::min<std::size_t>(3, products_.size()));
      std::set<FProduct*> chosen;
      while (chosen.size() < lines) chosen.insert(products_[w.Pick(products_.size())].get());
      for (FProduct* p : chosen) o.lines.push_back({p, static_cast<std::int64_t>(1 + w.Pick(3))});
    }
    std::shuffle(o.lines.begin(), o.lines.end(), w.rng);
    std::vector<Line> lines;
    for (const auto& l : o.lines) {
      lines.push_back({l.product->id, l.quantity});
      o.total += l.product->price * l.quantity;
    }
    const auto sent = SystemClock::now();
    const auto a = Command(w.api, w.rng, "POST", "/v1/orders", OrderBody(c.id, lines), w.Key());
    const auto acked = SystemClock::now();
    if (!a || !IsCommandSuccess(a->r, 201, 1) || a->r.Str("status") != "placed" ||
        a->r.Int("total_cents") != o.total) {
      c.uncertain = true;
      for (const auto& l : o.lines) l.product->uncertain = true;
      std::erase(w.active_customers, &c);
      return Unexpected("placing an order of " + std::to_string(o.total) + " for " + c.id, a);
    }
    o.id = a->r.Id();
    o.windows.push_back(a->window);
    o.placed_day = Day(sent, acked);
    for (const auto& l : o.lines) w.reserved[l.product] += l.quantity;
    ++w.placed;
    ++c.orders;
    ++c.order_count;
    if (c.orders >= kMaxOrdersPerCustomer) std::erase(w.active_customers, &c);
    w.orders.push_back(std::move(o));
    FOrder& stored = w.orders.back();
    w.active_orders.push_back(&stored);
    const std::string token = a->r.Header("X-Consistency-Token");
    Publish(stored, token);
    if (w.Chance(50)) {
      switch (w.Pick(5)) {
        case 0:
          return CheckOrder(w, stored, token);
        case 1:
          return CheckCustomer(w, c, token);
        case 2:
          return CheckSearch(w, stored, token);
        case 3:
          return CheckDaily(w, token);
        default:
          return CheckProduct(w, *stored.lines.front().product, token);
      }
    }
  }

  void AdvanceOrder(Writer& w) {
    const std::size_t slot = w.Pick(w.active_orders.size());
    FOrder& o = *w.active_orders[slot];
    FCustomer& c = *o.customer;
    const std::string base = "/v1/orders/" + o.id;
    const int choice = static_cast<int>(w.Pick(100));
    std::string next, target;
    json::object body;
    if (o.status == "placed" && choice < 75) {
      next = "paid";
      target = base + "/pay";
      body = {{"amount_cents", o.total}, {"payment_reference", "PAY-" + o.id.substr(0, 8)}};
    } else if (o.status == "paid" && choice < 80) {
      next = "shipped";
      target = base + "/ship";
      body = {{"tracking_number", "TRK" + o.id.substr(0, 8) + o.id.substr(24)}};
    } else if (o.status == "shipped") {
      next = "delivered";
      target = base + "/deliver";
    } else {
      next = "cancelled";
      target = base + "/cancel";
      body = {{"reason", "fault test " + std::to_string(w.sequence)}};
    }
    const auto sent = SystemClock::now();
    const auto a = Command(w.api, w.rng, "POST", target, body, w.Key());
    const auto acked = SystemClock::now();
    if (!a || !IsCommandSuccess(a->r, 200, o.version + 1) || a->r.Str("status") != next) {
      o.uncertain = c.uncertain = true;
      for (const auto& l : o.lines) l.product->uncertain = true;
      w.active_orders.erase(w.active_orders.begin() + static_cast<std::ptrdiff_t>(slot));
      std::erase(w.active_customers, &c);
      return Unexpected("order " + o.id + " " + o.status + " -> " + next, a);
    }
    const std::string previous = o.status;
    ++o.version;
    o.windows.push_back(a->window);
    o.status = next;
    if (next == "paid") {
      o.payment_reference = std::string(body.at("payment_reference").as_string());
      o.paid_day = Day(sent, acked);
      ++w.paid;
      c.lifetime_value += o.total;
      for (const auto& l : o.lines) w.sold[l.product] += l.quantity;
    } else if (next == "shipped") {
      o.tracking_number = std::string(body.at("tracking_number").as_string());
    } else if (next == "cancelled") {
      o.cancel_reason = std::string(body.at("reason").as_string());
      o.cancelled_day = Day(sent, acked);
      o.refunded = previous == "paid";
      --c.order_count;
      if (o.refunded) c.lifetime_value -= o.total;
      for (const auto& l : o.lines) {
        w.reserved[l.product] -= l.quantity;
        if (o.refunded) w.sold[l.product] -= l.quantity;
      }
    }
    if (next == "delivered" || next == "cancelled") {
      w.active_orders.erase(w.active_orders.begin() + static_cast<std::ptrdiff_t>(slot));
    }
    const std::string token = a->r.Header("X-Consistency-Token");
    Publish(o, token);
    if (w.Chance(50)) {
      switch (w.Pick(next == "paid" ? 5 : 3)) {
        case 0:
          return CheckOrder(w, o, token);
        case 1:
          return CheckCustomer(w, c, token);
        case 2:
          return CheckSearch(w, o, token);
        case 3:
          return CheckTop(w, *o.lines.front().product, token);
        default:
          return CheckDaily(w, token);
      }
    }
  }

  // The UTC day of a command sent at `sent` and acknowledged at `acked` ("" when they differ:
  // the server's day is then not known).
  std::string Day(SystemClock::time_point sent, SystemClock::time_point acked) {
    const std::string day = fault::UtcDate(sent);
    if (day != fault::UtcDate(acked)) {
      days_ambiguous_ = true;
      return {};
    }
    return day;
  }

  void Publish(const FOrder& o, const std::string& token) {
    std::lock_guard lock(published_mutex_);
    if (published_.size() < 4096) {
      published_.push_back({o.id, o.version, token});
    } else {
      published_[published_next_++ % published_.size()] = {o.id, o.version, token};
    }
  }

  void WriterLoop(Writer& w) {
    while (!stop_.load()) {
      while (hold_.load() && !stop_.load()) std::this_thread::sleep_for(5ms);
      if (stop_.load()) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(
          std::uniform_int_distribution<int>(kThinkMinMs, kThinkMaxMs)(w.rng)));
      const int roll = static_cast<int>(w.Pick(100));
      std::size_t products = 0;
      {
        std::lock_guard lock(products_mutex_);
        products = products_.size();
      }
      if (w.active_customers.size() < 2 || roll < 5) {
        RegisterCustomer(w);
      } else if (roll < 9) {
        RenameCustomer(w);
      } else if (roll < 11 && products < kMaxProducts) {
        AddProduct(w);
      } else if (roll < 18) {
        Restock(w);
      } else if (roll < 52 || w.active_orders.empty()) {
        PlaceOrder(w);
      } else {
        AdvanceOrder(w);
      }
    }
  }

  // Queries without a token (they may be behind, but must answer) and order views with the
  // token of a published order version (never older than that version).
  void ReaderLoop() {
    Api api(up_.endpoint(), 30s);
    std::mt19937_64 rng(options_.seed + 104729u);
    for (int i = 0; !stop_.load(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5 + rng() % 10));
      Published p;
      {
        std::lock_guard lock(published_mutex_);
        if (published_.empty()) continue;
        p = published_[rng() % published_.size()];
      }
      if (i % 3 == 0) {
        const auto r = TokenQuery(api, "/v1/orders/" + p.id, p.token);
        if (r && (r->status != 200 || r->Version() < p.version)) {
          Stale("GET /v1/orders/" + p.id + " with the token of version " +
                std::to_string(p.version) + ": HTTP " + std::to_string(r->status) + " " + r->body);
        }
        continue;
      }
      const std::string target = i % 3 == 1 ? "/v1/orders/" + p.id : "/v1/products/top?limit=10";
      try {
        const auto r = api.Get(target);
        if (r.status >= 500 && r.status != 503) {
          problems_.Add("server error",
                        "GET " + target + " answered " + std::to_string(r.status) + ": " + r.body);
        }
      } catch (const std::exception&) {
      }
    }
  }

  // ---- kills ----

  std::filesystem::path PgDir(const std::string& kind) const {
    return std::filesystem::path(up_.data_dir()) / (kind == "write_pg" ? "write-pg" : "read-pg");
  }

  // The pid of the server of that kind right now (0 when there is none).
  pid_t PidOf(const std::string& kind) const {
    if (kind == "up") return up_.pid();
    if (kind == "write_pg" || kind == "read_pg") return LivePostmaster(PgDir(kind));
    const auto pids = ChildrenNamed(up_.pid(), kind == "redis" ? "redis-server" : "nats-server");
    return pids.size() == 1 ? pids.front() : 0;
  }

  // Kills the k-th scheduled server, waits until the service has it back, a new command is
  // acknowledged and every projection is 0 events behind. False when it does not recover.
  bool KillAndRecover(std::size_t k) {
    KillRecord rec;
    rec.kind = schedule_[k];
    rec.old_pid = PidOf(rec.kind);
    if (rec.old_pid <= 0) {
      ADD_FAILURE() << "kill " << k + 1 << ": no " << rec.kind << " process to kill\n"
                    << up_.Diagnostics();
      return false;
    }
    for (std::size_t i = 0; i <= k; ++i) rec.commands_before += windows_[i].acknowledged.load();
    rec.at = SystemClock::now();
    const auto killed = Clock::now();
    window_ = static_cast<int>(k + 1);
    if (rec.kind == "up") {
      up_.Kill();
    } else if (::kill(rec.old_pid, SIGKILL) != 0) {
      ADD_FAILURE() << "kill " << rec.kind << " " << rec.old_pid << ": " << std::strerror(errno);
      return false;
    }
    const auto deadline = killed + kRecoveryDeadline;
    auto give_up = [&](const std::string& why) {
      kills_.push_back(rec);
      ADD_FAILURE() << "kill " << k + 1 << " (" << rec.kind << ", pid " << rec.old_pid
                    << "): " << why << "\n"
                    << up_.Diagnostics();
      return false;
    };

    // 1. A new process of that kind.
    if (rec.kind == "up") {
      try {
        up_.Start();
      } catch (const std::exception& e) {
        return give_up(std::string("restarting shopcqrs up failed: ") + e.what());
      }
      rec.new_pid = up_.pid();
    } else {
      while (Clock::now() < deadline) {
        const pid_t pid = PidOf(rec.kind);
        if (pid > 0 && pid != rec.old_pid) {
          rec.new_pid = pid;
          break;
        }
        std::this_thread::sleep_for(10ms);
      }
      if (rec.new_pid <= 0) {
        return give_up("no new " + rec.kind + " process within " +
                       std::to_string(kRecoveryDeadline.count()) + " s");
      }
    }
    rec.restart_s = Seconds(Clock::now() - killed);

    // 2. A command sent after the kill is acknowledged (the probe: restock the probe product).
    const auto a = Command(*control_, rng_, "POST", "/v1/products/" + probe_->id + "/restock",
                           json::object{{"quantity", 1}}, "fault-probe-" + std::to_string(k + 1));
    if (!a || !IsCommandSuccess(a->r, 200, probe_->version + 1)) {
      probe_->uncertain = true;
      Unexpected("probe after kill " + std::to_string(k + 1), a);
      return give_up("the probe command after the kill got no acknowledgement");
    }
    ++probe_->version;
    ++probe_->restocked;
    probe_->windows.push_back(a->window);
    const auto writable = Clock::now();
    rec.writable_s = Seconds(writable - killed);

    // 3. Every projection 0 behind, in a poll started after the probe was acknowledged. Under
    //    load that may take a lucky poll: after kUnderLoadWindow the writers pause until then.
    std::string why;
    while (true) {
      if (!hold_ && Clock::now() - writable > kUnderLoadWindow) {
        hold_ = true;
        rec.held = true;
      }
      if (CaughtUp(&why)) break;
      if (Clock::now() >= deadline) {
        hold_ = false;
        return give_up("not caught up within " + std::to_string(kRecoveryDeadline.count()) +
                       " s: " + why);
      }
      std::this_thread::sleep_for(20ms);
    }
    rec.recovery_s = Seconds(Clock::now() - killed);
    hold_ = false;
    std::printf(
        "[          ] kill %2zu/%zu %-8s pid %7d -> %7d: restarted %.2f s, writable %.2f s, "
        "caught up %.2f s%s\n",
        k + 1, schedule_.size(), rec.kind.c_str(), static_cast<int>(rec.old_pid),
        static_cast<int>(rec.new_pid), rec.restart_s, rec.writable_s, rec.recovery_s,
        rec.held ? " (writers paused)" : "");
    std::fflush(stdout);
    kills_.push_back(rec);
    return true;
  }

  // One poll of /v1/admin/projections: every projection running (the relay leading) and 0
  // events behind; the relay, read_pg, search and redis all listed.
  bool CaughtUp(std::string* why, std::int64_t* relay_position = nullptr) {
    ApiResponse r;
    try {
      r = admin_->Get("/v1/admin/projections");
    } catch (const std::exception& e) {
      *why = std::string("admin: ") + e.what();
      return false;
    }
    const auto* items = ItemsOf(r);
    if (r.status != 200 || !items) {
      *why = "admin: HTTP " + std::to_string(r.status) + " " + r.body;
      return false;
    }
    std::set<std::string> seen;
    std::string out;
    for (const auto& v : *items) {
      if (!v.is_object()) continue;
      const auto& item = v.as_object();
      const std::string name = StrOf(item, "name");
      seen.insert(name);
      const std::string status = StrOf(item, "status");
      if (status != (name == "relay" ? "leader" : "running")) out += name + " is " + status + "; ";
      if (IntOf(item, "events_behind") != 0) {
        out += name + " is " + std::to_string(IntOf(item, "events_behind")) + " behind (" +
               StrOf(item, "last_error") + "); ";
      }
      if (name == "relay" && relay_position) *relay_position = IntOf(item, "position");
    }
    for (const char* name : {"relay", "read_pg", "search", "redis"}) {
      if (!seen.contains(name)) out += std::string(name) + " not listed; ";
    }
    *why = out;
    return out.empty();
  }

  bool WaitCaughtUp(Clock::time_point deadline, std::string* why,
                    std::int64_t* relay_position = nullptr) {
    while (!CaughtUp(why, relay_position)) {
      if (Clock::now() >= deadline) return false;
      std::this_thread::sleep_for(50ms);
    }
    return true;
  }

  // ---- verification ----

  std::string KindOf(int window) const {
    if (window < 0) return "unattributed";
    if (window == 0) return "none";
    return schedule_[static_cast<std::size_t>(window - 1)];
  }

  // The window an event at wall-clock time `t` happened in.
  int WindowAt(SystemClock::time_point t) const {
    int window = 0;
    for (std::size_t i = 0; i < kills_.size(); ++i) {
      if (kills_[i].at <= t) window = static_cast<int>(i + 1);
    }
    return window;
  }

  // What the verification reads with and compares against (test thread only).
  struct Check {
    explicit Check(Ledger l, const Endpoint& endpoint) : ledger(std::move(l)), api(endpoint, 30s) {}
    Ledger ledger;
    Api api;
    std::string token;  // of a command after every other one
    Clock::time_point deadline;
    std::vector<const FOrder*> orders;
    std::vector<const FCustomer*> customers;
    std::vector<const FProduct*> products;
    std::map<std::string, const FOrder*> order_by_id;
    bool exact = true;  // every command had its expected answer: aggregates are known exactly
  };

  void Verify() {
    const auto verify_start = Clock::now();
    // A command after every other one: its token covers everything the load did.
    const auto a = Command(*control_, rng_, "POST", "/v1/products/" + probe_->id + "/restock",
                           json::object{{"quantity", 1}}, "fault-probe-final");
    if (!a || !IsCommandSuccess(a->r, 200, probe_->version + 1)) {
      return Fail("the final command failed: " + (a ? a->r.body : std::string("no answer")));
    }
    ++probe_->version;
    ++probe_->restocked;
    probe_->windows.push_back(a->window);
    std::string why;
    if (!WaitCaughtUp(Clock::now() + 120s, &why, &relay_position_)) {
      return Fail("not caught up 120 s after the load: " + why);
    }
    converge_s_ = Seconds(Clock::now() - verify_start);
    end_day_ = fault::UtcDate(SystemClock::now());

    Check chk(Ledger([this](int w) { return KindOf(w); }), up_.endpoint());
    chk.token = a->r.Header("X-Consistency-Token");
    chk.deadline = Clock::now() + 300s;
    chk.exact = !uncertain_.load();
    for (const auto& w : writers_) {
      for (const auto& o : w->orders) {
        chk.orders.push_back(&o);
        chk.order_by_id[o.id] = &o;
      }
      for (const auto& c : w->customers) chk.customers.push_back(&c);
    }
    for (const auto& p : products_) chk.products.push_back(p.get());
    chk.products.push_back(probe_.get());

    VerifyOrders(chk);
    VerifyCustomers(chk);
    VerifyProducts(chk);
    VerifyDailySales(chk);

    verified_orders_ = static_cast<int>(chk.orders.size());
    verified_customers_ = static_cast<int>(chk.customers.size());
    verified_products_ = static_cast<int>(chk.products.size());
    verify_s_ = Seconds(Clock::now() - verify_start);
    const Ledger& ledger = chk.ledger;
    ledger.Report();
    lost_ = ledger.lost();
    duplicated_ = ledger.duplicated();
    mismatched_ = ledger.mismatched();
    for (const auto& kind : options_.kinds) {
      lost_by_kind_[kind] = ledger.LostFor(kind);
      duplicated_by_kind_[kind] = ledger.DuplicatedFor(kind);
    }
    for (const char* kind : {"none", "unattributed"}) {
      lost_by_kind_[kind] = ledger.LostFor(kind);
      duplicated_by_kind_[kind] = ledger.DuplicatedFor(kind);
    }
    verified_ = true;
  }

  // A query with the final token; a 503 (still behind) is retried until the deadline.
  ApiResponse Read(Check& chk, const std::string& target) {
    while (true) {
      ApiResponse r;
      try {
        r = chk.api.Get(target,
                        {{"X-Consistency-Token", chk.token}, {"X-Consistency-Wait-Ms", "10000"}});
      } catch (const std::exception& e) {
        if (Clock::now() >= chk.deadline) {
          ADD_FAILURE() << "GET " << target << ": " << e.what();
          return r;
        }
        std::this_thread::sleep_for(200ms);
        continue;
      }
      if (r.status != 503 || Clock::now() >= chk.deadline) {
        if (r.status != 200 && r.status != 404) {
          ADD_FAILURE() << "GET " << target << " with the final token: " << r;
        }
        return r;
      }
      std::this_thread::sleep_for(200ms);
    }
  }

  // An order view or summary against the model (versions first: lost or duplicated effects).
  void CompareOrder(Check& chk, const std::string& where, const json::object& v, const FOrder& o,
                    bool with_lines) {
    if (o.uncertain) return;
    if (!chk.ledger.Versions(where + " " + o.id, IntOf(v, "version"), o.version, o.windows)) return;
    std::ostringstream diff;
    auto expect = [&](std::string_view key, const std::string& want) {
      const std::string got = StrOf(v, key);
      if (got != (want.empty() ? "null" : want))
        diff << key << " " << got << " != " << want << "; ";
    };
    auto expect_set = [&](std::string_view key, bool want) {
      const std::string got = StrOf(v, key);
      if ((got != "null" && got != "<absent>") != want) diff << key << " " << got << "; ";
    };
    expect("status", o.status);
    expect("customer_id", o.customer->id);
    if (!o.customer->uncertain) expect("customer_name", o.customer->name);
    expect("customer_email", o.customer->email);
    expect("payment_reference", o.payment_reference);
    expect("tracking_number", o.tracking_number);
    expect("cancel_reason", o.cancel_reason);
    if (IntOf(v, "total_cents") != o.total)
      diff << "total_cents " << IntOf(v, "total_cents") << "; ";
    std::int64_t items = 0;
    for (const auto& l : o.lines) items += l.quantity;
    if (IntOf(v, "item_count") != items) diff << "item_count " << IntOf(v, "item_count") << "; ";
    expect_set("placed_at", true);
    expect_set("paid_at", !o.payment_reference.empty());
    expect_set("shipped_at", !o.tracking_number.empty());
    expect_set("delivered_at", o.status == "delivered");
    expect_set("cancelled_at", o.status == "cancelled");
    if (with_lines) {
      std::map<std::string, std::pair<std::int64_t, std::int64_t>> want, got;
      for (const auto& l : o.lines) want[l.product->id] = {l.quantity, l.product->price};
      const auto* lines = v.if_contains("lines");
      if (lines && lines->is_array()) {
        for (const auto& l : lines->as_array()) {
          if (!l.is_object()) continue;
          got[StrOf(l.as_object(), "product_id")] = {IntOf(l.as_object(), "quantity"),
                                                     IntOf(l.as_object(), "unit_price_cents")};
        }
      }
      if (got != want) diff << "lines differ; ";
    }
    if (!diff.str().empty())
      chk.ledger.Mismatch(where + " " + o.id + ": " + diff.str() + json::serialize(v));
  }

  // Every order's view (Redis, the read PostgreSQL behind it).
  void VerifyOrders(Check& chk) {
    for (const FOrder* o : chk.orders) {
      const auto r = Read(chk, "/v1/orders/" + o->id);
      if (r.status == 200) {
        CompareOrder(chk, "order view", r.Object(), *o, true);
      } else if (!o->uncertain) {
        chk.ledger.Versions("order view " + o->id + " (HTTP " + std::to_string(r.status) + ")", 0,
                            o->version, o->windows);
      }
    }
  }

  // Every customer: its view and statistics, its history (every page) and its search.
  void VerifyCustomers(Check& chk) {
    for (const FCustomer* c : chk.customers) {
      std::set<std::string> expected;
      std::int64_t count = 0, value = 0;
      for (const FOrder* o : chk.orders) {
        if (o->customer != c) continue;
        expected.insert(o->id);
        count += CountsForCustomer(*o);
        if (Sold(*o)) value += o->total;
      }
      const auto view = Read(chk, "/v1/customers/" + c->id);
      if (view.status != 200) {
        chk.ledger.Versions("customer " + c->id + " (HTTP " + std::to_string(view.status) + ")", 0,
                            c->version, c->windows);
        continue;
      }
      if (!c->uncertain) {
        if (chk.ledger.Versions("customer " + c->id, view.Version(), c->version, c->windows) &&
            (view.Str("name") != c->name || view.Str("email") != c->email)) {
          chk.ledger.Mismatch("customer " + c->id + ": " + view.body);
        }
        chk.ledger.Amount("order_count of customer " + c->id, view.Int("order_count").value_or(-1),
                          count);
        chk.ledger.Amount("lifetime_value_cents of customer " + c->id,
                          view.Int("lifetime_value_cents").value_or(-1), value);
      }
      // History, every page.
      std::set<std::string> listed;
      std::string cursor;
      for (int page = 0; page < 100; ++page) {
        std::string target = "/v1/customers/" + c->id + "/orders?limit=100";
        if (!cursor.empty()) target += "&cursor=" + cursor;
        const auto r = Read(chk, target);
        const auto* items = ItemsOf(r);
        if (r.status != 200 || !items) break;
        for (const auto& item : *items) {
          if (!item.is_object()) continue;
          const std::string id = StrOf(item.as_object(), "id");
          if (!listed.insert(id).second) {
            chk.ledger.Duplicated(-1, "history of customer " + c->id + " lists " + id + " twice");
          }
          if (const auto it = chk.order_by_id.find(id); it != chk.order_by_id.end()) {
            CompareOrder(chk, "history of " + c->id + ":", item.as_object(), *it->second, false);
          }
        }
        const auto* next = r.Object().if_contains("next_cursor");
        if (!next || !next->is_string()) break;
        cursor = std::string(next->as_string());
      }
      CompareSets(chk, "history of customer " + c->id, listed, expected, c->uncertain);
      // Search by the customer's unique word.
      const auto found = Read(chk, "/v1/search/orders?limit=100&q=" + c->word);
      std::set<std::string> hits;
      if (const auto* items = ItemsOf(found)) {
        for (const auto& item : *items) {
          if (!item.is_object()) continue;
          const std::string id = StrOf(item.as_object(), "id");
          hits.insert(id);
          if (const auto it = chk.order_by_id.find(id); it != chk.order_by_id.end()) {
            CompareOrder(chk, "search hit for " + c->word + ":", item.as_object(), *it->second,
                         false);
          }
        }
      }
      CompareSets(chk, "search for " + c->word, hits, expected, c->uncertain);
      ++searches_;
    }
  }

  // Every product's view (read PostgreSQL) and the top sellers (Redis).
  void VerifyProducts(Check& chk) {
    std::map<std::string, std::pair<std::int64_t, std::int64_t>> sales;  // units, revenue
    for (const FProduct* p : chk.products) {
      std::int64_t reserved = 0, units = 0;
      for (const FOrder* o : chk.orders) {
        for (const auto& l : o->lines) {
          if (l.product != p) continue;
          if (CountsForCustomer(*o)) reserved += l.quantity;
          if (Sold(*o)) units += l.quantity;
        }
      }
      sales[p->id] = {units, units * p->price};
      const auto r = Read(chk, "/v1/products/" + p->id);
      if (r.status != 200) {
        chk.ledger.Versions("product " + p->id + " (HTTP " + std::to_string(r.status) + ")", 0,
                            p->version, p->windows);
        continue;
      }
      if (p->uncertain) continue;
      chk.ledger.Versions("product " + p->id, r.Version(), p->version, p->windows);
      if (!chk.exact) continue;
      chk.ledger.Amount("units_sold of product " + p->id, r.Int("units_sold").value_or(-1), units);
      chk.ledger.Amount("revenue_cents of product " + p->id, r.Int("revenue_cents").value_or(-1),
                        units * p->price);
      if (r.Int("stock") != p->initial_stock + p->restocked - reserved) {
        chk.ledger.Mismatch("stock of product " + p->id + ": want " +
                            std::to_string(p->initial_stock + p->restocked - reserved) + ", got " +
                            r.body);
      }
    }
    {
      const auto top = Read(chk, "/v1/products/top?limit=100");
      std::set<std::string> listed;
      std::int64_t previous = std::numeric_limits<std::int64_t>::max();
      if (const auto* items = ItemsOf(top)) {
        for (const auto& v : *items) {
          if (!v.is_object()) continue;
          const auto& item = v.as_object();
          const std::string id = StrOf(item, "product_id");
          listed.insert(id);
          const std::int64_t units = IntOf(item, "units_sold");
          if (units > previous) chk.ledger.Mismatch("top sellers out of order at " + id);
          previous = units;
          const auto it = sales.find(id);
          if (it == sales.end()) {
            if (!products_uncertain_)
              chk.ledger.Duplicated(-1, "top sellers list an unknown product " + id);
            continue;
          }
          if (!chk.exact) continue;
          chk.ledger.Amount("top sellers: units_sold of " + id, units, it->second.first);
          chk.ledger.Amount("top sellers: revenue_cents of " + id, IntOf(item, "revenue_cents"),
                            it->second.second);
        }
      }
      for (const FProduct* p : chk.products) {
        if (!listed.contains(p->id))
          chk.ledger.Lost(p->windows.front(), "top sellers miss product " + p->id);
      }
    }
  }

  // Daily sales: the run's days in total, and day by day when every command's day is known.
  void VerifyDailySales(Check& chk) {
    if (!chk.exact) return;
    std::map<std::string, std::array<std::int64_t, 3>> want;  // placed, paid, revenue
    std::array<std::int64_t, 3> want_total{0, 0, 0};
    for (const FOrder* o : chk.orders) {
      want_total[0] += 1;
      want[o->placed_day][0] += 1;
      if (!o->payment_reference.empty()) {
        want_total[1] += 1;
        want_total[2] += o->total;
        want[o->paid_day][1] += 1;
        want[o->paid_day][2] += o->total;
      }
      if (o->refunded) {
        want_total[2] -= o->total;
        want[o->cancelled_day][2] -= o->total;
      }
    }
    const auto daily = Read(chk, DailyTarget(start_day_, end_day_));
    std::array<std::int64_t, 3> got_total{0, 0, 0};
    std::map<std::string, std::array<std::int64_t, 3>> got;
    if (const auto* items = ItemsOf(daily)) {
      for (const auto& v : *items) {
        if (!v.is_object()) continue;
        const auto& item = v.as_object();
        const std::array<std::int64_t, 3> day = {IntOf(item, "orders_placed", 0),
                                                 IntOf(item, "orders_paid", 0),
                                                 IntOf(item, "revenue_cents", 0)};
        for (int i = 0; i < 3; ++i)
          got_total[static_cast<std::size_t>(i)] += day[static_cast<std::size_t>(i)];
        if (day != std::array<std::int64_t, 3>{0, 0, 0}) got[StrOf(item, "date")] = day;
      }
    }
    chk.ledger.Amount("daily sales: orders_placed in all", got_total[0], want_total[0]);
    chk.ledger.Amount("daily sales: orders_paid in all", got_total[1], want_total[1]);
    if (got_total[2] != want_total[2]) {
      chk.ledger.Mismatch("daily sales: revenue_cents in all " + std::to_string(got_total[2]) +
                          ", want " + std::to_string(want_total[2]));
    }
    std::erase_if(want, [](const auto& kv) {
      return kv.second == std::array<std::int64_t, 3>{0, 0, 0};
    });
    if (!days_ambiguous_ && got != want)
      chk.ledger.Mismatch("daily sales differ day by day: " + daily.body);
  }

  std::string DailyTarget(const std::string& from_day, const std::string& to_day) const {
    // One day either side: the server's clock is this machine's, but be generous at midnight.
    auto shift = [](const std::string& day, int days) {
      std::tm tm{};
      std::sscanf(day.c_str(), "%4d-%2d-%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday);
      tm.tm_year -= 1900;
      tm.tm_mon -= 1;
      tm.tm_hour = 12;
      return fault::UtcDate(SystemClock::from_time_t(::timegm(&tm)) + days * 24h);
    };
    return "/v1/stats/daily-sales?from=" + shift(from_day, -1) + "&to=" + shift(to_day, 1);
  }

  // A listed set of order ids against the expected one: missing acknowledged orders are lost
  // (attributed to the window their placement was acknowledged in), ids of no acknowledged
  // order duplicated (attributed by their placed_at).
  void CompareSets(Check& chk, const std::string& where, const std::set<std::string>& got,
                   const std::set<std::string>& want, bool uncertain) {
    for (const auto& id : want) {
      if (got.contains(id)) continue;
      const FOrder* o = chk.order_by_id.at(id);
      chk.ledger.Lost(o->windows.front(), where + " misses order " + id);
    }
    if (uncertain) return;
    for (const auto& id : got) {
      if (want.contains(id)) continue;
      int window = -1;
      if (!chk.order_by_id.contains(id)) {
        // Not ours at all, or a second copy of a placement: when did it happen?
        try {
          const auto r = Api(up_.endpoint(), 30s).Get("/v1/orders/" + id);
          if (const auto t = ParseTimestamp(r.Str("placed_at"))) window = WindowAt(*t);
        } catch (const std::exception&) {
        }
      }
      chk.ledger.Duplicated(
          window, where + " lists order " + id + ", which no acknowledged command placed there");
    }
  }

  // ---- the end ----

  void Finish(Clock::time_point started) {
    stop_ = true;
    const double total_s = Seconds(Clock::now() - started);
    problems_.Report();

    int acknowledged = 0, retried = 0, transport = 0, unavailable = 0, token_queries = 0,
        token_behind = 0, stale = 0;
    for (std::size_t w = 0; w <= schedule_.size(); ++w) {
      acknowledged += windows_[w].acknowledged.load();
      retried += windows_[w].retried.load();
      transport += windows_[w].transport_errors.load();
      unavailable += windows_[w].unavailable.load();
      token_queries += windows_[w].token_queries.load();
      token_behind += windows_[w].token_behind.load();
      stale += windows_[w].stale.load();
    }
    const int unanswered = problems_.Count("unanswered");
    const int unexpected = problems_.Count("unexpected answer");
    const int server_errors = problems_.Count("server error") + problems_.Count("bad 503");

    // Per kind: the windows after its kills.
    struct PerKind {
      int kills = 0, acknowledged = 0, retried = 0, stale = 0, held = 0;
      std::vector<double> restart, writable, recovery;
    };
    std::map<std::string, PerKind> per_kind;
    per_kind["none"].acknowledged = windows_[0].acknowledged.load();
    per_kind["none"].retried = windows_[0].retried.load();
    per_kind["none"].stale = windows_[0].stale.load();
    for (std::size_t k = 0; k < schedule_.size(); ++k) {
      auto& p = per_kind[schedule_[k]];
      p.acknowledged += windows_[k + 1].acknowledged.load();
      p.retried += windows_[k + 1].retried.load();
      p.stale += windows_[k + 1].stale.load();
    }
    for (const auto& rec : kills_) {
      auto& p = per_kind[rec.kind];
      ++p.kills;
      p.held += rec.held;
      if (rec.restart_s >= 0) p.restart.push_back(rec.restart_s);
      if (rec.writable_s >= 0) p.writable.push_back(rec.writable_s);
      if (rec.recovery_s >= 0) p.recovery.push_back(rec.recovery_s);
    }

    std::printf("[          ] %-8s %5s %9s %7s %8s %8s %8s %8s %5s %5s %5s\n", "kind", "kills",
                "commands", "events", "restart", "rec p50", "rec max", "retried", "lost", "dup",
                "stale");
    std::vector<std::string> rows = options_.kinds;
    rows.insert(rows.begin(), "none");
    json::array by_kind;
    for (const auto& kind : rows) {
      const auto& p = per_kind[kind];
      const int lost = lost_by_kind_.contains(kind) ? lost_by_kind_[kind] : 0;
      const int dup = duplicated_by_kind_.contains(kind) ? duplicated_by_kind_[kind] : 0;
      auto secs = [](double v) {
        char out[32];
        if (v < 0) return std::string("-");
        std::snprintf(out, sizeof out, "%.2fs", v);
        return std::string(out);
      };
      std::printf("[          ] %-8s %5d %9d %7d %8s %8s %8s %8d %5d %5d %5d\n", kind.c_str(),
                  p.kills, p.acknowledged, p.acknowledged,
                  secs(fault::Percentile(p.restart, 0.5)).c_str(),
                  secs(fault::Percentile(p.recovery, 0.5)).c_str(),
                  secs(fault::Percentile(p.recovery, 1.0)).c_str(), p.retried, lost, dup, p.stale);
      json::array recovery;
      for (const double s : p.recovery) recovery.push_back(s);
      by_kind.push_back(json::object{
          {"kind", kind},
          {"kills", p.kills},
          {"commands_acknowledged", p.acknowledged},
          {"events", p.acknowledged},
          {"retried_commands", p.retried},
          {"restart_p50_s", fault::Percentile(p.restart, 0.5)},
          {"restart_max_s", fault::Percentile(p.restart, 1.0)},
          {"writable_p50_s", fault::Percentile(p.writable, 0.5)},
          {"writable_max_s", fault::Percentile(p.writable, 1.0)},
          {"recovery_p50_s", fault::Percentile(p.recovery, 0.5)},
          {"recovery_max_s", fault::Percentile(p.recovery, 1.0)},
          {"recovery_s", std::move(recovery)},
          {"writers_paused", p.held},
          {"lost", lost},
          {"duplicated", dup},
          {"stale_reads", p.stale},
      });
    }
    std::printf(
        "[          ] %d commands acknowledged (= events), %d retried, %d transport errors, %d "
        "answers 503; %d token queries (%d behind), %d stale; relay position %lld; load %.1f s, "
        "converged %.1f s after it, verified %d orders, %d customers, %d products in %.1f s; "
        "lost %d, duplicated %d, mismatched %d\n",
        acknowledged, retried, transport, unavailable, token_queries, token_behind, stale,
        static_cast<long long>(relay_position_), load_s_, converge_s_, verified_orders_,
        verified_customers_, verified_products_, verify_s_, lost_, duplicated_, mismatched_);

    if (!options_.report_path.empty()) {
      json::array kinds;
      for (const auto& kind : options_.kinds) kinds.push_back(json::string(kind));
      json::array kill_list;
      for (const auto& rec : kills_) {
        kill_list.push_back(json::object{{"kind", rec.kind},
                                         {"old_pid", rec.old_pid},
                                         {"new_pid", rec.new_pid},
                                         {"restart_s", rec.restart_s},
                                         {"writable_s", rec.writable_s},
                                         {"recovery_s", rec.recovery_s},
                                         {"writers_paused", rec.held},
                                         {"commands_before", rec.commands_before}});
      }
      const json::object report{
          {"seed", options_.seed},
          {"kills_per_kind", options_.kills_per_kind},
          {"kinds", std::move(kinds)},
          {"writers", kWriters},
          {"verified", verified_},
          {"passed", verified_ && !::testing::Test::HasFailure()},
          {"duration_s", total_s},
          {"load_s", load_s_},
          {"converge_s", converge_s_},
          {"verify_s", verify_s_},
          {"commands_acknowledged", acknowledged},
          {"events", acknowledged},
          {"events_source",
           "acknowledged commands (one event each); the admin API has no outbox count"},
          {"relay_position", relay_position_},
          {"retried_commands", retried},
          {"transport_errors", transport},
          {"unavailable_answers", unavailable},
          {"token_queries", token_queries},
          {"token_queries_behind", token_behind},
          {"stale_reads", stale},
          {"unanswered_commands", unanswered},
          {"unexpected_answers", unexpected},
          {"server_errors", server_errors},
          {"lost", lost_},
          {"duplicated", duplicated_},
          {"mismatched", mismatched_},
          {"verified_orders", verified_orders_},
          {"verified_customers", verified_customers_},
          {"verified_products", verified_products_},
          {"by_kind", std::move(by_kind)},
          {"kills", std::move(kill_list)},
      };
      std::ofstream(options_.report_path) << json::serialize(report) << "\n";
    }

    EXPECT_TRUE(verified_) << "the read stores were not verified";
    EXPECT_EQ(static_cast<int>(kills_.size()), static_cast<int>(schedule_.size()));
    EXPECT_EQ(unanswered, 0) << "commands without a definitive answer";
    EXPECT_EQ(unexpected, 0) << "commands with an unexpected answer";
    EXPECT_EQ(server_errors, 0) << "5xx answers other than 503 problems";
    EXPECT_EQ(stale, 0) << "answers older than the consistency token they were sent with";
    EXPECT_EQ(lost_, 0) << "acknowledged effects missing from a read store";
    EXPECT_EQ(duplicated_, 0) << "effects applied twice";
    EXPECT_EQ(mismatched_, 0) << "read-store fields that differ from the commands";
    if (verified_) {
      EXPECT_GE(relay_position_, acknowledged) << "the outbox holds fewer events than commands";
    }
    for (const auto& [kind, p] : per_kind) {
      if (kind != "none" && options_.kills_per_kind > 0) {
        EXPECT_EQ(p.kills, options_.kills_per_kind) << kind;
        EXPECT_GT(p.acknowledged, 0) << "no command acknowledged after a kill of " << kind;
      }
    }
    if (::testing::Test::HasFailure()) {
      std::printf("service root %s\n%s\n", up_.root().c_str(), up_.Diagnostics(6000).c_str());
    }
  }

  Options options_;
  std::mt19937_64 rng_;  // the schedule, the probes, the pauses (test thread only)
  std::vector<std::string> schedule_;
  std::unique_ptr<WindowCounters[]> windows_;
  std::atomic<int> window_{0};
  UpInstance up_;
  std::unique_ptr<Api> control_, admin_;
  std::vector<std::unique_ptr<Writer>> writers_;
  std::mutex products_mutex_;  // guards the container (the fields of a product are its owner's)
  std::vector<std::unique_ptr<FProduct>> products_;
  std::unique_ptr<FProduct> probe_;
  struct Published {
    std::string id;
    std::int64_t version = 0;
    std::string token;
  };
  std::mutex published_mutex_;
  std::vector<Published> published_;
  std::size_t published_next_ = 0;
  std::atomic<bool> stop_{false}, hold_{false}, uncertain_{false}, products_uncertain_{false},
      days_ambiguous_{false};
  Problems problems_;
  std::vector<KillRecord> kills_;
  std::string start_day_, end_day_;
  std::int64_t relay_position_ = -1;
  double load_s_ = 0, converge_s_ = 0, verify_s_ = 0;
  bool verified_ = false;
  int verified_orders_ = 0, verified_customers_ = 0, verified_products_ = 0, searches_ = 0;
  int lost_ = 0, duplicated_ = 0, mismatched_ = 0;
  std::map<std::string, int> lost_by_kind_, duplicated_by_kind_;
};

TEST(FaultTest, KillNineOfEveryServerAndOfUpUnderLoadLosesAndDuplicatesNothing) {
  const Options options = Options::FromEnvironment();
  ASSERT_EQ(options.error, "");
  FaultRun run(options);
  run.Run();
}

}  // namespace
}  // namespace shopcqrs::blackbox
