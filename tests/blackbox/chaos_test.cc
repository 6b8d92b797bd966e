// Black-box chaos tests: the broker (nats-server) and the cache (redis-server) that
// `shopcqrs up` supervises are killed with SIGKILL while clients run a mixed command and query
// load over HTTP. The service must keep answering (a 5xx is only ever a 503 problem), restart
// its children, and every read store must converge to exactly what the commands did: order
// views (Redis), customer histories and views, product views (read PostgreSQL), search, and
// /v1/admin/projections, /readyz and /metrics must show a healthy, caught-up pipeline.
//
// The tests share the suite's one service instance, so they leave it healthy (they end only
// when every projection has caught up and /readyz answers 200).

#include <gtest/gtest.h>

#include <signal.h>
#include <sys/types.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <iterator>
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
#include <vector>

#include <boost/json.hpp>

#include "blackbox/service_fixture.h"

namespace shopcqrs::blackbox {
namespace {

namespace json = boost::json;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// ---------------------------------------------------------------------------------------------
// Helpers.
// ---------------------------------------------------------------------------------------------

bool IsInt(const json::value* v) { return v && (v->is_int64() || v->is_uint64()); }
std::int64_t AsInt(const json::value& v) {
  return v.is_int64() ? v.get_int64() : static_cast<std::int64_t>(v.get_uint64());
}
std::string StrField(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  return v && v->is_string() ? std::string(v->get_string()) : std::string();
}
std::int64_t IntField(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  return IsInt(v) ? AsInt(*v) : -1;
}

// Counts of responses, by a key such as "GET /v1/orders/{id} 503 read_model_behind".
class Tally {
 public:
  void Add(const std::string& key) {
    std::lock_guard lock(mutex_);
    ++counts_[key];
  }
  std::map<std::string, int> Snapshot() const {
    std::lock_guard lock(mutex_);
    return counts_;
  }
  int Matching(std::string_view part) const {
    std::lock_guard lock(mutex_);
    int n = 0;
    for (const auto& [key, count] : counts_) {
      if (key.find(part) != std::string::npos) n += count;
    }
    return n;
  }

 private:
  mutable std::mutex mutex_;
  std::map<std::string, int> counts_;
};

// Failures found on worker threads, reported (the first few in full) on the test thread.
class Problems {
 public:
  void Add(std::string what) {
    std::lock_guard lock(mutex_);
    ++count_;
    if (first_.size() < 25) first_.push_back(std::move(what));
  }
  void Report() const {
    std::lock_guard lock(mutex_);
    for (const auto& p : first_) ADD_FAILURE() << p;
    if (count_ > static_cast<int>(first_.size())) {
      ADD_FAILURE() << "... and " << count_ - static_cast<int>(first_.size())
                    << " more problems of that kind";
    }
  }
  int count() const {
    std::lock_guard lock(mutex_);
    return count_;
  }

 private:
  mutable std::mutex mutex_;
  int count_ = 0;
  std::vector<std::string> first_;
};

// A 5xx other than 503, or a 503 that is not an RFC 7807 problem with Retry-After (API.md,
// docs/API.md), is never acceptable.
std::optional<std::string> ServerErrorProblem(const ApiResponse& r) {
  if (r.status < 500) return std::nullopt;
  if (r.status != 503) return "a " + std::to_string(r.status) + " (only 503 is allowed)";
  if (!r.Header("Content-Type").starts_with("application/problem+json")) {
    return "a 503 with Content-Type '" + r.Header("Content-Type") +
           "' (must be application/problem+json)";
  }
  if (!r.IsObject() || r.Code().empty() || r.Int("status") != 503) {
    return std::string("a 503 whose body is not a problem with a code and status 503");
  }
  if (r.Header("Retry-After").empty()) return std::string("a 503 without Retry-After");
  return std::nullopt;
}

std::string StatusKey(const ApiResponse& r) {
  std::string key = std::to_string(r.status);
  if (r.status >= 400) key += " " + r.Code();
  return key;
}

// "" when `got` holds every id of `want` (and, when `exact`, no other); else what differs.
std::string SetDiff(const std::set<std::string>& got, const std::set<std::string>& want,
                    bool exact) {
  std::vector<std::string> missing, extra;
  std::set_difference(want.begin(), want.end(), got.begin(), got.end(),
                      std::back_inserter(missing));
  if (exact) {
    std::set_difference(got.begin(), got.end(), want.begin(), want.end(),
                        std::back_inserter(extra));
  }
  if (missing.empty() && extra.empty()) return {};
  std::string out = std::to_string(got.size()) + " ids, " + std::to_string(want.size()) +
                    " expected; missing " + std::to_string(missing.size());
  if (!missing.empty()) out += " (e.g. " + missing.front() + ")";
  out += ", unexpected " + std::to_string(extra.size());
  if (!extra.empty()) out += " (e.g. " + extra.front() + ")";
  return out;
}

// Parses Prometheus text into {series (name and labels as printed): value}.
std::map<std::string, double> ParseMetrics(const std::string& text) {
  std::map<std::string, double> samples;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    const auto space = line.rfind(' ');
    if (space == std::string::npos) continue;
    samples[line.substr(0, space)] = std::strtod(line.c_str() + space + 1, nullptr);
  }
  return samples;
}

std::string Series(std::string_view name, std::string_view projection) {
  return std::string(name) + "{projection=\"" + std::string(projection) + "\"}";
}

// One poll of /v1/admin/projections: the items by name ({} when the answer is not a list).
std::map<std::string, json::object> Projections(Api& api, ApiResponse* raw = nullptr) {
  std::map<std::string, json::object> items;
  auto r = api.Get("/v1/admin/projections");
  if (r.status == 200 && r.Object().contains("items") && r.Object().at("items").is_array()) {
    for (const auto& v : r.Object().at("items").as_array()) {
      if (v.is_object()) items[StrField(v.as_object(), "name")] = v.as_object();
    }
  }
  if (raw) *raw = std::move(r);
  return items;
}

// Why the pipeline is not (yet) converged; "" when every projection has events_behind 0 and
// status "running", the relay status "leader", and relay, read_pg and redis are all listed.
std::string NotConverged(const std::map<std::string, json::object>& items) {
  std::string why;
  for (const char* name : {"relay", "read_pg", "redis"}) {
    if (!items.contains(name)) why += std::string(name) + " missing; ";
  }
  for (const auto& [name, item] : items) {
    const std::string status = StrField(item, "status");
    const std::string want = name == "relay" ? "leader" : "running";
    if (status != want) why += name + " is " + status + "; ";
    if (IntField(item, "events_behind") != 0) {
      why += name + " is " + std::to_string(IntField(item, "events_behind")) + " events behind; ";
    }
  }
  return why;
}

// ---------------------------------------------------------------------------------------------
// The test's model of what it did.
// ---------------------------------------------------------------------------------------------

struct ChaosProduct {
  Product product;
  std::int64_t initial_stock = 0;
};

struct ChaosCustomer {
  Customer customer;
  std::string word;  // unique, in every name the customer ever has
  std::int64_t version = 1;
};

struct OrderLine {
  std::size_t product = 0;  // index into the products
  std::int64_t quantity = 1;
};

struct ChaosOrder {
  std::string id;
  std::size_t customer = 0;
  std::vector<OrderLine> lines;
  std::int64_t total = 0;
  std::int64_t version = 1;
  std::string status = "placed";
  std::string payment_reference;
  std::string tracking_number;
  std::string cancel_reason;
  bool unknown = false;  // a command on it had an unexpected outcome: excluded from comparisons
};

bool Counts(const ChaosOrder& o) { return o.status != "cancelled"; }
bool Sold(const ChaosOrder& o) {
  return o.status == "paid" || o.status == "shipped" || o.status == "delivered";
}

class ChaosTest : public BlackboxTest {
 protected:
  // A command with an Idempotency-Key, retried (same key, same body) after a 503 or a
  // transport error until it gets another answer or `deadline` passes; nullopt then.
  std::optional<ApiResponse> Command(Api& api, std::string_view kind, std::string_view method,
                                     const std::string& target, const json::value& body) {
    const std::string key = "chaos-" + UniqueSuffix();
    const std::string text = json::serialize(body);
    const auto deadline = Clock::now() + 20s;
    while (true) {
      std::optional<ApiResponse> r;
      try {
        r = api.Send(method, target, text, {{"Idempotency-Key", key}});
      } catch (const std::exception& e) {
        tally_.Add(std::string(kind) + " transport_error");
        problems_.Add(std::string(kind) + " " + target + ": transport error: " + e.what());
      }
      if (r) {
        tally_.Add(std::string(kind) + " " + StatusKey(*r));
        if (auto bad = ServerErrorProblem(*r)) {
          problems_.Add(std::string(kind) + " " + target + " answered " + *bad + ": " + r->body);
        }
        if (r->status != 503) return r;
      }
      if (Clock::now() >= deadline) return std::nullopt;
      std::this_thread::sleep_for(100ms);
    }
  }

  // A query; records its outcome and any server-side error. `allowed`: the statuses that are
  // fine here (a 503 problem always is).
  std::optional<ApiResponse> Query(Api& api, std::string_view kind, const std::string& target,
                                   const HttpHeaders& headers, std::initializer_list<int> allowed) {
    std::optional<ApiResponse> r;
    try {
      r = api.Get(target, headers);
    } catch (const std::exception& e) {
      tally_.Add(std::string(kind) + " transport_error");
      problems_.Add(std::string(kind) + " " + target + ": transport error: " + e.what());
      return std::nullopt;
    }
    tally_.Add(std::string(kind) + " " + StatusKey(*r));
    if (auto bad = ServerErrorProblem(*r)) {
      problems_.Add(std::string(kind) + " " + target + " answered " + *bad + ": " + r->body);
    } else if (r->status != 503 &&
               std::find(allowed.begin(), allowed.end(), r->status) == allowed.end()) {
      problems_.Add(std::string(kind) + " " + target + " answered " + std::to_string(r->status) +
                    ": " + r->body);
    } else if (r->status == 200 && !r->IsObject()) {
      problems_.Add(std::string(kind) + " " + target + " answered 200 without a JSON object");
    }
    return r;
  }

  Tally tally_;
  Problems problems_;
};

// ---------------------------------------------------------------------------------------------
// 1. Kill -9 the broker, then the cache, in the middle of a mixed load.
// ---------------------------------------------------------------------------------------------

TEST_F(ChaosTest, BrokerAndCacheKilledMidLoadConverge) {
  const pid_t service = SharedService::Instance().Pid();
  if (service <= 0) GTEST_SKIP() << "needs the service started by this binary (no pid to use)";
  ASSERT_EQ(ChildrenNamed(service, "nats-server").size(), 1u) << "one nats-server child";
  ASSERT_EQ(ChildrenNamed(service, "redis-server").size(), 1u) << "one redis-server child";

  // ---- seed ----
  constexpr int kCustomers = 4;
  constexpr int kProducts = 4;
  constexpr std::int64_t kStock = 1'000'000;
  std::vector<ChaosCustomer> customers;
  std::vector<ChaosProduct> products;
  std::string seed_token;
  for (int i = 0; i < kCustomers; ++i) {
    ChaosCustomer c;
    c.word = UniqueWord("qc");
    c.customer = Customer{"", "Chaos " + c.word + " r0", UniqueEmail("chaos")};
    const auto r = api().Post("/v1/customers", CustomerBody(c.customer.name, c.customer.email));
    ASSERT_TRUE(IsCommandSuccess(r, 201, 1)) << r;
    c.customer.id = r.Id();
    seed_token = r.Header("X-Consistency-Token");
    customers.push_back(std::move(c));
  }
  for (int i = 0; i < kProducts; ++i) {
    ChaosProduct p;
    p.product = Product{"", UniqueSku("CHAOS"), "Chaos Widget " + UniqueWord("qc"), 100 + 37 * i};
    p.initial_stock = kStock;
    const auto r = api().Post(
        "/v1/products", ProductBody(p.product.sku, p.product.name, p.product.price_cents, kStock));
    ASSERT_TRUE(IsCommandSuccess(r, 201, 1)) << r;
    p.product.id = r.Id();
    seed_token = r.Header("X-Consistency-Token");
    products.push_back(std::move(p));
  }
  // The seed is visible on the read side before the load starts.
  for (const auto& c : customers) {
    const auto r =
        api().Get("/v1/customers/" + c.customer.id,
                  {{"X-Consistency-Token", seed_token}, {"X-Consistency-Wait-Ms", "10000"}});
    ASSERT_EQ(r.status, 200) << r;
  }

  // ---- load ----
  constexpr int kWriters = 3;
  constexpr int kReaders = 2;
  std::atomic<bool> stop{false};
  std::atomic<int> commands_done{0};
  // Set when a command had an unexpected outcome: the aggregates are then not known exactly.
  std::atomic<bool> load_uncertain{false};
  std::mutex customers_mutex;  // customers[i].customer.name / version
  // Orders the readers may ask for: id and the token of its creation.
  std::mutex published_mutex;
  std::vector<std::pair<std::string, std::string>> published;
  std::vector<std::vector<ChaosOrder>> orders(kWriters);

  auto writer = [&](int t) {
    Api api(endpoint());
    std::mt19937 rng(static_cast<unsigned>(std::random_device{}()) + static_cast<unsigned>(t));
    auto pick = [&](std::size_t n) {
      return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng);
    };
    auto& mine = orders[static_cast<std::size_t>(t)];
    std::vector<std::size_t> active;  // indices of orders not in a final state
    while (!stop.load()) {
      const int roll = static_cast<int>(pick(100));
      if (roll < 10) {
        // Rename a customer (keeping its search word); the highest version's name is current.
        const std::size_t ci = pick(customers.size());
        const std::string name = "Chaos " + customers[ci].word + " r" + UniqueSuffix();
        const auto r =
            Command(api, "PATCH /v1/customers/{id}", "PATCH",
                    "/v1/customers/" + customers[ci].customer.id, json::object{{"name", name}});
        if (!r || r->status != 200 || !IsCommandSuccess(*r, 200, r->Version())) {
          problems_.Add("renaming a customer: " + (r ? r->body : std::string("no answer")));
          load_uncertain = true;
          continue;
        }
        std::lock_guard lock(customers_mutex);
        if (r->Version() > customers[ci].version) {
          customers[ci].version = r->Version();
          customers[ci].customer.name = name;
        }
      } else if (roll < 45 || active.empty()) {
        ChaosOrder o;
        o.customer = pick(customers.size());
        const std::size_t first = pick(products.size());
        o.lines.push_back({first, static_cast<std::int64_t>(1 + pick(3))});
        if (pick(2) == 0) {
          o.lines.push_back({(first + 1 + pick(products.size() - 1)) % products.size(),
                             static_cast<std::int64_t>(1 + pick(3))});
        }
        std::vector<Line> lines;
        for (const auto& l : o.lines) {
          lines.push_back({products[l.product].product.id, l.quantity});
          o.total += products[l.product].product.price_cents * l.quantity;
        }
        const auto r = Command(api, "POST /v1/orders", "POST", "/v1/orders",
                               OrderBody(customers[o.customer].customer.id, lines));
        if (!r || !IsCommandSuccess(*r, 201, 1) || r->Str("status") != "placed" ||
            r->Int("total_cents") != o.total) {
          problems_.Add("placing an order (total " + std::to_string(o.total) +
                        "): " + (r ? std::to_string(r->status) + " " + r->body : "no answer"));
          load_uncertain = true;  // it may have been placed after all
          continue;
        }
        o.id = r->Id();
        {
          std::lock_guard lock(published_mutex);
          published.emplace_back(o.id, r->Header("X-Consistency-Token"));
        }
        active.push_back(mine.size());
        mine.push_back(std::move(o));
      } else {
        const std::size_t slot = pick(active.size());
        ChaosOrder& o = mine[active[slot]];
        const std::string base = "/v1/orders/" + o.id;
        std::string next;
        std::optional<ApiResponse> r;
        const int choice = static_cast<int>(pick(100));
        if (o.status == "placed" && choice < 75) {
          next = "paid";
          const std::string ref = "PAY-" + UniqueSuffix();
          r = Command(api, "POST /v1/orders/{id}/pay", "POST", base + "/pay",
                      json::object{{"amount_cents", o.total}, {"payment_reference", ref}});
          if (r && r->status == 200) o.payment_reference = ref;
        } else if (o.status == "paid" && choice < 80) {
          next = "shipped";
          const std::string tracking = "TRK" + UniqueWord("qc");
          r = Command(api, "POST /v1/orders/{id}/ship", "POST", base + "/ship",
                      json::object{{"tracking_number", tracking}});
          if (r && r->status == 200) o.tracking_number = tracking;
        } else if (o.status == "shipped") {
          next = "delivered";
          r = Command(api, "POST /v1/orders/{id}/deliver", "POST", base + "/deliver",
                      json::object{});
        } else {
          next = "cancelled";
          const std::string reason = "chaos " + UniqueSuffix();
          r = Command(api, "POST /v1/orders/{id}/cancel", "POST", base + "/cancel",
                      json::object{{"reason", reason}});
          if (r && r->status == 200) o.cancel_reason = reason;
        }
        if (!r || !IsCommandSuccess(*r, 200, o.version + 1) || r->Str("status") != next) {
          problems_.Add("order " + o.id + " " + o.status + " -> " + next + ": " +
                        (r ? std::to_string(r->status) + " " + r->body : "no answer"));
          o.unknown = true;
          load_uncertain = true;
          active.erase(active.begin() + static_cast<std::ptrdiff_t>(slot));
          continue;
        }
        o.status = next;
        ++o.version;
        if (next == "delivered" || next == "cancelled") {
          active.erase(active.begin() + static_cast<std::ptrdiff_t>(slot));
        }
      }
      commands_done.fetch_add(1);
    }
  };

  auto reader = [&](int t) {
    Api api(endpoint());
    std::mt19937 rng(static_cast<unsigned>(std::random_device{}()) + 100u +
                     static_cast<unsigned>(t));
    auto pick = [&](std::size_t n) {
      return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng);
    };
    for (int i = 0; !stop.load(); ++i) {
      std::pair<std::string, std::string> order;
      {
        std::lock_guard lock(published_mutex);
        if (!published.empty()) order = published[pick(published.size())];
      }
      const auto& customer = customers[pick(customers.size())];
      switch (i % 5) {
        case 0:
          if (!order.first.empty()) {
            // Without a token: it may not be projected yet.
            const auto r =
                Query(api, "GET /v1/orders/{id}", "/v1/orders/" + order.first, {}, {200, 404});
            if (r && r->status == 200 && r->Id() != order.first) {
              problems_.Add("GET /v1/orders/" + order.first +
                            " answered another order: " + r->body);
            }
          }
          break;
        case 1:
          if (!order.first.empty()) {
            // With its creation token: never 404 (a 503 read_model_behind when the wait runs out).
            const auto r = Query(
                api, "GET /v1/orders/{id} +token", "/v1/orders/" + order.first,
                {{"X-Consistency-Token", order.second}, {"X-Consistency-Wait-Ms", "1500"}}, {200});
            if (r && r->status == 200 && (r->Id() != order.first || r->Version() < 1)) {
              problems_.Add("GET /v1/orders/" + order.first + " with token: " + r->body);
            }
          }
          break;
        case 2:
          Query(api, "GET /v1/products/top", "/v1/products/top?limit=10", {}, {200});
          break;
        case 3:
          Query(api, "GET /v1/customers/{id}/orders",
                "/v1/customers/" + customer.customer.id + "/orders?limit=20", {}, {200});
          break;
        case 4:
          Query(api, "GET /v1/search/orders", "/v1/search/orders?q=" + UrlEncode(customer.word), {},
                {200});
          break;
      }
    }
  };

  const auto start = Clock::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < kWriters; ++t) threads.emplace_back(writer, t);
  for (int t = 0; t < kReaders; ++t) threads.emplace_back(reader, t);

  // One SIGKILL of a child of the service, and its restart by the service.
  struct Kill {
    std::string comm;
    pid_t old_pid = -1;
    pid_t new_pid = -1;
    double restart_s = -1;
    int commands_before = 0;
  };
  std::vector<Kill> kills;
  // Kills the service's child `comm` and waits until the service has started a new one.
  auto kill_child = [&](const std::string& comm) {
    Kill k;
    k.comm = comm;
    const auto pids = ChildrenNamed(service, comm);
    if (pids.size() != 1) {
      ADD_FAILURE() << "expected one " << comm << " child of " << service << ", found "
                    << pids.size();
      kills.push_back(k);
      return;
    }
    k.old_pid = pids[0];
    k.commands_before = commands_done.load();
    const auto killed_at = Clock::now();
    EXPECT_EQ(::kill(k.old_pid, SIGKILL), 0) << comm;
    const auto deadline = killed_at + 30s;
    while (Clock::now() < deadline) {
      const auto now_pids = ChildrenNamed(service, comm);
      if (now_pids.size() == 1 && now_pids[0] != k.old_pid) {
        k.new_pid = now_pids[0];
        k.restart_s = std::chrono::duration<double>(Clock::now() - killed_at).count();
        break;
      }
      std::this_thread::sleep_for(20ms);
    }
    EXPECT_GT(k.new_pid, 0) << "the service did not restart " << comm << " within 30 s";
    kills.push_back(k);
  };

  std::this_thread::sleep_until(start + 1500ms);
  kill_child("nats-server");
  std::this_thread::sleep_until(std::max(Clock::now() + 1s, start + 3500ms));
  kill_child("redis-server");
  const int commands_at_last_kill = commands_done.load();
  std::this_thread::sleep_until(std::max(Clock::now() + 2s, start + 7s));
  stop = true;
  for (auto& t : threads) t.join();
  const double load_s = std::chrono::duration<double>(Clock::now() - start).count();
  const int commands_total = commands_done.load();

  // ---- what happened during the load ----
  std::printf("[          ] load %.1f s, %d commands\n", load_s, commands_total);
  for (const auto& k : kills) {
    std::printf(
        "[          ] killed %s pid %d (after %d commands); restarted as pid %d in %.2f s\n",
        k.comm.c_str(), static_cast<int>(k.old_pid), k.commands_before, static_cast<int>(k.new_pid),
        k.restart_s);
  }
  for (const auto& [key, count] : tally_.Snapshot()) {
    std::printf("[          ] %6d  %s\n", count, key.c_str());
  }
  problems_.Report();
  ASSERT_EQ(kills.size(), 2u);
  // The kills happened in the middle of the load: commands completed before and after them.
  EXPECT_GT(kills[0].commands_before, 0) << "no command completed before the broker was killed";
  EXPECT_GT(commands_total, commands_at_last_kill)
      << "no command completed after the cache was killed";
  EXPECT_GT(tally_.Matching("GET "), 0) << "no query ran";

  // ---- convergence: read-your-writes with the token of the last command ----
  // A command after every other one: its token covers everything the load did.
  std::string token;
  {
    const std::string name = "Chaos " + customers[0].word + " final";
    const auto r =
        api().Patch("/v1/customers/" + customers[0].customer.id, json::object{{"name", name}});
    ASSERT_TRUE(IsCommandSuccess(r, 200, customers[0].version + 1)) << r;
    customers[0].customer.name = name;
    customers[0].version = r.Version();
    token = r.Header("X-Consistency-Token");
  }
  const HttpHeaders with_token = {{"X-Consistency-Token", token},
                                  {"X-Consistency-Wait-Ms", "10000"}};
  const auto verify_start = Clock::now();
  const auto verify_deadline = verify_start + 60s;
  int behind = 0;  // 503 read_model_behind answers to reads with the final token
  // A read with the final token; a 503 (the read store is still behind) is retried until the
  // deadline.
  auto read = [&](const std::string& target) {
    while (true) {
      auto r = api().Get(target, with_token);
      if (auto bad = ServerErrorProblem(r)) ADD_FAILURE() << "GET " << target << ": " << *bad;
      if (r.status != 503 || Clock::now() >= verify_deadline) {
        EXPECT_EQ(r.status, 200) << "GET " << target << " with the final token: " << r;
        return r;
      }
      ++behind;
      std::this_thread::sleep_for(200ms);
    }
  };
  const bool exact = !load_uncertain.load();
  std::vector<const ChaosOrder*> known;
  std::map<std::string, const ChaosOrder*> by_id;
  for (const auto& mine : orders) {
    for (const auto& o : mine) {
      if (o.unknown) continue;
      known.push_back(&o);
      by_id[o.id] = &o;
    }
  }
  ASSERT_FALSE(known.empty());

  // Compares an order view or summary with the model; "" when it matches.
  auto diff_order = [&](const json::object& v, const ChaosOrder& o, bool with_lines) {
    std::ostringstream out;
    const auto& c = customers[o.customer];
    auto expect_str = [&](std::string_view key, const std::string& want) {
      const auto* f = v.if_contains(key);
      const std::string got = !f               ? "<absent>"
                              : f->is_null()   ? "null"
                              : f->is_string() ? std::string(f->get_string())
                                               : json::serialize(*f);
      const std::string expected = want.empty() ? "null" : want;
      if (got != expected) out << key << ": " << got << " != " << expected << "; ";
    };
    auto expect_int = [&](std::string_view key, std::int64_t want) {
      if (IntField(v, key) != want) {
        out << key << ": " << IntField(v, key) << " != " << want << "; ";
      }
    };
    auto expect_set = [&](std::string_view key, bool want) {
      const auto* f = v.if_contains(key);
      const bool set = f && f->is_string();
      if (!f || (!set && !f->is_null()) || set != want) {
        out << key << ": " << (f ? json::serialize(*f) : "<absent>") << " (want "
            << (want ? "a timestamp" : "null") << "); ";
      }
    };
    expect_str("id", o.id);
    expect_str("status", o.status);
    expect_int("version", o.version);
    expect_int("total_cents", o.total);
    expect_str("customer_id", c.customer.id);
    expect_str("customer_name", c.customer.name);
    expect_str("customer_email", c.customer.email);
    expect_str("payment_reference", o.payment_reference);
    expect_str("tracking_number", o.tracking_number);
    expect_str("cancel_reason", o.cancel_reason);
    std::int64_t items = 0;
    for (const auto& l : o.lines) items += l.quantity;
    expect_int("item_count", items);
    expect_set("placed_at", true);
    expect_set("paid_at", !o.payment_reference.empty());
    expect_set("shipped_at", o.status == "shipped" || o.status == "delivered");
    expect_set("delivered_at", o.status == "delivered");
    expect_set("cancelled_at", o.status == "cancelled");
    if (with_lines) {
      std::map<std::string, std::pair<std::int64_t, std::int64_t>> want, got;  // qty, price
      for (const auto& l : o.lines) {
        want[products[l.product].product.id] = {l.quantity,
                                                products[l.product].product.price_cents};
      }
      const auto* lines = v.if_contains("lines");
      if (lines && lines->is_array()) {
        for (const auto& l : lines->as_array()) {
          if (!l.is_object()) continue;
          got[StrField(l.as_object(), "product_id")] = {
              IntField(l.as_object(), "quantity"), IntField(l.as_object(), "unit_price_cents")};
        }
      }
      if (got != want) out << "lines differ: " << (lines ? json::serialize(*lines) : "<absent>");
    }
    return out.str();
  };

  // Differences found (the first few are reported in full).
  int mismatches = 0;
  auto mismatch = [&](const std::string& where, const std::string& d, const std::string& got) {
    if (++mismatches <= 12) ADD_FAILURE() << where << ": " << d << "\n" << got;
  };

  // Every order: the order view (Redis, falling back to read PostgreSQL).
  for (const ChaosOrder* o : known) {
    const auto r = read("/v1/orders/" + o->id);
    if (r.status != 200) {
      ++mismatches;
    } else if (const auto d = diff_order(r.Object(), *o, true); !d.empty()) {
      mismatch("order view of " + o->id, d, r.body);
    }
    if (mismatches > 12) break;
  }
  EXPECT_EQ(mismatches, 0) << "order views differ (stopped after 12) of " << known.size()
                           << " orders";
  const double orders_verified_s =
      std::chrono::duration<double>(Clock::now() - verify_start).count();

  // Every customer: its view (read PostgreSQL) and its order history, paged.
  for (std::size_t ci = 0; ci < customers.size(); ++ci) {
    const auto& c = customers[ci];
    std::int64_t count = 0, value = 0;
    std::set<std::string> expected;
    for (const ChaosOrder* o : known) {
      if (o->customer != ci) continue;
      expected.insert(o->id);
      count += Counts(*o);
      if (Sold(*o)) value += o->total;
    }
    const auto view = read("/v1/customers/" + c.customer.id);
    EXPECT_EQ(view.Str("name"), c.customer.name) << view;
    EXPECT_EQ(view.Str("email"), c.customer.email) << view;
    EXPECT_EQ(view.Version(), c.version) << view;
    if (exact) {
      EXPECT_EQ(view.Int("order_count"), count) << view;
      EXPECT_EQ(view.Int("lifetime_value_cents"), value) << view;
    }

    std::set<std::string> listed;
    std::string cursor;
    for (int page = 0; page < 100; ++page) {
      std::string target = "/v1/customers/" + c.customer.id + "/orders?limit=100";
      if (!cursor.empty()) target += "&cursor=" + UrlEncode(cursor);
      const auto r = read(target);
      if (r.status != 200 || !r.Object().contains("items")) break;
      for (const auto& item : r.Object().at("items").as_array()) {
        const std::string id = StrField(item.as_object(), "id");
        EXPECT_TRUE(listed.insert(id).second) << "listed twice: " << id;
        if (const auto it = by_id.find(id); it != by_id.end()) {
          if (const auto d = diff_order(item.as_object(), *it->second, false); !d.empty()) {
            mismatch("history of customer " + std::to_string(ci) + ", order " + id, d,
                     json::serialize(item));
          }
        }
      }
      const auto* next = r.Object().if_contains("next_cursor");
      if (!next || !next->is_string()) break;
      cursor = std::string(next->as_string());
    }
    EXPECT_EQ(SetDiff(listed, expected, exact), "") << "history of customer " << ci;

    // Search by the customer's word (in every name it had): its orders, current name.
    const auto found = read("/v1/search/orders?limit=100&q=" + UrlEncode(c.word));
    std::set<std::string> hits;
    if (found.status == 200 && found.Object().contains("items")) {
      for (const auto& item : found.Object().at("items").as_array()) {
        const std::string id = StrField(item.as_object(), "id");
        hits.insert(id);
        const auto it = by_id.find(id);
        const std::string where = "search hit " + id + " for customer " + std::to_string(ci);
        if (it != by_id.end() && it->second->customer != ci) {
          mismatch(where, "another customer's order", json::serialize(item));
        } else if (it != by_id.end()) {
          if (const auto d = diff_order(item.as_object(), *it->second, false); !d.empty()) {
            mismatch(where, d, json::serialize(item));
          }
        } else if (exact) {
          mismatch(where, "not an order of this test", json::serialize(item));
        }
      }
    }
    if (expected.size() <= 100) {
      EXPECT_EQ(SetDiff(hits, expected, exact), "") << "search for customer " << ci << "'s word";
    } else {
      EXPECT_EQ(hits.size(), std::min<std::size_t>(expected.size(), 100))
          << "search for customer " << ci << "'s word";
    }
  }

  // A few shipped orders by tracking number: exactly that order.
  int searched = 0;
  for (const ChaosOrder* o : known) {
    if (o->tracking_number.empty() || searched >= 5) continue;
    ++searched;
    const auto r = read("/v1/search/orders?q=" + UrlEncode(o->tracking_number));
    const auto* items = r.Object().if_contains("items");
    ASSERT_TRUE(items && items->is_array()) << r;
    ASSERT_EQ(items->as_array().size(), 1u) << "search " << o->tracking_number << ": " << r;
    EXPECT_EQ(diff_order(items->as_array()[0].as_object(), *o, false), "") << r;
  }

  // Products: stock, units sold and revenue (read PostgreSQL), and the top list (Redis).
  if (exact) {
    std::map<std::string, std::pair<std::int64_t, std::int64_t>> sold;  // units, revenue
    for (std::size_t pi = 0; pi < products.size(); ++pi) {
      const auto& p = products[pi];
      std::int64_t reserved = 0, units = 0;
      for (const ChaosOrder* o : known) {
        for (const auto& l : o->lines) {
          if (l.product != pi) continue;
          if (Counts(*o)) reserved += l.quantity;
          if (Sold(*o)) units += l.quantity;
        }
      }
      sold[p.product.id] = {units, units * p.product.price_cents};
      const auto r = read("/v1/products/" + p.product.id);
      EXPECT_EQ(r.Int("stock"), p.initial_stock - reserved) << r;
      EXPECT_EQ(r.Int("units_sold"), units) << r;
      EXPECT_EQ(r.Int("revenue_cents"), units * p.product.price_cents) << r;
    }
    const auto top = read("/v1/products/top?limit=100");
    if (top.status == 200 && top.Object().contains("items")) {
      for (const auto& item : top.Object().at("items").as_array()) {
        const auto it = sold.find(StrField(item.as_object(), "product_id"));
        if (it == sold.end()) continue;
        EXPECT_EQ(IntField(item.as_object(), "units_sold"), it->second.first) << top;
        EXPECT_EQ(IntField(item.as_object(), "revenue_cents"), it->second.second) << top;
      }
    }
  }
  EXPECT_EQ(mismatches, 0) << "differences between the read side and the commands, in all";
  std::printf(
      "[          ] verified %zu orders in %.1f s (%d answers 503 read_model_behind with the final "
      "token), %zu with a tracking number searched\n",
      known.size(), orders_verified_s, behind, static_cast<std::size_t>(searched));

  // ---- every projection caught up, relay leading, service ready ----
  const auto converge_deadline = Clock::now() + 60s;
  ApiResponse raw;
  std::string why = "not polled";
  while (true) {
    why = NotConverged(Projections(api(), &raw));
    if (raw.status == 200 && why.empty()) break;
    if (Clock::now() >= converge_deadline) break;
    std::this_thread::sleep_for(200ms);
  }
  EXPECT_EQ(why, "") << "not converged within 60 s: " << raw;
  ApiResponse ready;
  while (true) {
    ready = api().Get("/readyz");
    if (ready.status == 200 || Clock::now() >= converge_deadline) break;
    std::this_thread::sleep_for(200ms);
  }
  EXPECT_EQ(ready.status, 200) << ready;
  std::printf("[          ] converged %.1f s after the load: %s\n",
              std::chrono::duration<double>(Clock::now() - verify_start).count(), raw.body.c_str());
  if (HasFailure()) {
    std::printf("service root %s\n%s\n", SharedService::Instance().Root().c_str(),
                SharedService::Instance().Diagnostics(6000).c_str());
  }
}

// ---------------------------------------------------------------------------------------------
// 2. Operations endpoints name the broker, the relay and every store.
// ---------------------------------------------------------------------------------------------

TEST_F(ChaosTest, AdminAndReadinessCoverBrokerAndStores) {
  // Something for every projection to apply, read back through both read stores.
  const Customer c = CreateCustomer(api(), "Chaos Admin " + UniqueWord("qc"));
  const Product p = CreateProduct(api(), 250, 10);
  ASSERT_FALSE(HasFailure());
  const auto placed = PlaceOrder(api(), c.id, {{p.id, 2}});
  ASSERT_TRUE(IsCommandSuccess(placed, 201, 1)) << placed;
  const HttpHeaders with_token = {{"X-Consistency-Token", placed.Header("X-Consistency-Token")},
                                  {"X-Consistency-Wait-Ms", "10000"}};
  ASSERT_EQ(api().Get("/v1/orders/" + placed.Id(), with_token).status, 200);
  ASSERT_EQ(api().Get("/v1/customers/" + c.id + "/orders", with_token).status, 200);

  // /v1/admin/projections: the relay (to NATS) and one projection per read store, caught up.
  const auto deadline = Clock::now() + 60s;
  std::map<std::string, json::object> items;
  ApiResponse raw;
  std::string why;
  while (true) {
    items = Projections(api(), &raw);
    why = NotConverged(items);
    if ((raw.status == 200 && why.empty()) || Clock::now() >= deadline) break;
    std::this_thread::sleep_for(100ms);
  }
  ASSERT_EQ(raw.status, 200) << raw;
  ASSERT_EQ(why, "") << raw;
  EXPECT_EQ(StrField(items["relay"], "store"), "nats") << raw;
  EXPECT_EQ(StrField(items["read_pg"], "store"), "read_pg") << raw;
  EXPECT_EQ(StrField(items["redis"], "store"), "redis") << raw;
  for (const auto& [name, item] : items) {
    EXPECT_FALSE(StrField(item, "store").empty()) << name << ": " << raw;
    EXPECT_GE(IntField(item, "position"), 1) << name << ": " << raw;
    EXPECT_GE(IntField(item, "lag_ms"), 0) << name << ": " << raw;
    EXPECT_EQ(IntField(item, "dead_letters"), 0) << name << ": " << raw;
    const auto* err = item.if_contains("last_error");
    EXPECT_TRUE(err && err->is_null()) << name << ": " << raw;
  }

  // /readyz: ready, and (when it lists its checks) the broker and the cache are among them.
  ApiResponse ready;
  while (true) {
    ready = api().Get("/readyz");
    if (ready.status == 200 || Clock::now() >= deadline) break;
    std::this_thread::sleep_for(100ms);
  }
  ASSERT_EQ(ready.status, 200) << ready;
  EXPECT_EQ(ready.Str("status"), "ready") << ready;
  if (const auto* checks = ready.Object().if_contains("checks")) {
    ASSERT_TRUE(checks->is_object()) << ready;
    std::vector<std::string> required = {"write_db", "read_db", "nats", "redis"};
    for (const auto& [name, item] : items) {
      if (name != "relay") required.push_back("projector_" + name);
    }
    for (const auto& key : required) {
      EXPECT_TRUE(checks->as_object().contains(key)) << key << ": " << ready;
    }
    for (const auto& kv : checks->as_object()) {
      EXPECT_TRUE(kv.value().is_string() && kv.value().as_string() == "up")
          << kv.key() << ": " << ready;
    }
  }

  // /metrics: the relay leads and has published; every projection has its series, and (idle,
  // caught up) the position the metrics show is the one the admin endpoint shows.
  std::map<std::string, double> samples;
  std::string missing;
  while (true) {
    const auto m = api().Get("/metrics");
    ASSERT_EQ(m.status, 200) << m;
    samples = ParseMetrics(m.body);
    items = Projections(api());
    missing.clear();
    auto need = [&](const std::string& series, const std::function<bool(double)>& ok,
                    std::string_view want) {
      const auto it = samples.find(series);
      if (it == samples.end()) {
        missing += series + " missing; ";
      } else if (!ok(it->second)) {
        missing +=
            series + " is " + std::to_string(it->second) + " (want " + std::string(want) + "); ";
      }
    };
    need(
        "shopcqrs_relay_leader", [](double v) { return v == 1; }, "1");
    need(
        "shopcqrs_relay_events_published_total", [](double v) { return v >= 1; }, ">= 1");
    for (const auto& [name, item] : items) {
      need(
          Series("shopcqrs_projection_events_behind", name), [](double v) { return v == 0; }, "0");
      if (name == "relay") continue;
      const double position = static_cast<double>(IntField(item, "position"));
      need(
          Series("shopcqrs_projection_position", name), [&](double v) { return v == position; },
          "the admin position " + std::to_string(position));
      need(
          Series("shopcqrs_projection_bound", name), [](double v) { return v >= 1; }, ">= 1");
      need(
          Series("shopcqrs_events_total", name), [](double v) { return v >= 1; }, ">= 1");
      need(
          Series("shopcqrs_projection_lag_seconds_count", name), [](double v) { return v >= 1; },
          ">= 1");
      need(
          Series("shopcqrs_projection_heartbeat_age_seconds", name),
          [](double v) { return v >= 0 && v < 30; }, "0..30 s");
    }
    if (missing.empty() || Clock::now() >= deadline) break;
    std::this_thread::sleep_for(200ms);
  }
  EXPECT_EQ(missing, "");
  for (const char* name : {"read_pg", "redis"}) {
    EXPECT_TRUE(samples.contains(Series("shopcqrs_projection_position", name))) << name;
  }
}
}  // namespace
}  // namespace shopcqrs::blackbox
