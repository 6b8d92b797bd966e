// shopcqrs-bench: HTTP load scenarios against a running shopcqrs.
//
//   shopcqrs-bench place --url http://127.0.0.1:8080 -c 8 -d 20 [--rate R] [--json FILE]
//   shopcqrs-bench pay   --url http://127.0.0.1:8080 -c 8 -d 20 [--orders N] [--json FILE]
//   shopcqrs-bench visible --url URL --rate R -c 32 -d 20    (pay, then read with its token)
//   shopcqrs-bench seed  --url URL --orders N --dataset FILE      (orders for the queries)
//   shopcqrs-bench view|history|search|mix --url URL [--url URL2 ...] --dataset FILE -c 8 -d 20
//                  [--json FILE]
//   shopcqrs-bench isolation --url URL [--read-url URL] --dataset FILE -c 4 --readers 16
//
// Queries: view = GET /v1/orders/{id}, history = GET /v1/customers/{id}/orders, search =
// GET /v1/search/orders?q=, mix = a realistic blend of every query. isolation = place/pay
// throughput and latency of the writers alone ("idle") and then while --readers clients
// saturate the query side with the mix ("saturated"), in one run.
//
// Several --url (repeated or comma-separated): the query scenarios spread their clients over
// the services round-robin (client c talks to URL c mod n), e.g. two API processes over two
// read databases; every other scenario, and seeding, uses the first URL.
//
// visible = the lag a client sees: open loop of PayOrder as `pay`, and after each answer the
// same client reads the order (GET /v1/orders/{id}) with the command's X-Consistency-Token; the
// time from the command's answer to that read's 200 is the visible lag, reported beside the
// commands' latency.
//
// Setup seeds customers and products (huge stock) through the HTTP API; `pay` and `visible` also
// place the orders they will pay. Then the scenario runs closed-loop (default) or open-loop
// (--rate) for a warm-up and a measured window, and the result is printed as a table and written as
// JSON.
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <CLI/CLI.hpp>
#include <boost/json.hpp>

#include "load_generator.h"

namespace shopcqrs::bench {
namespace {

namespace json = boost::json;

struct Options {
  std::string scenario;
  std::string url = "http://127.0.0.1:8080";  // the first of urls
  std::vector<std::string> urls;
  int clients = 8;
  double duration = 20;
  double warmup = 2;
  double rate = 0;
  int timeout_ms = 10'000;
  int customers = 200;
  int products = 500;
  std::int64_t orders = 0;
  double setup_factor = 2.0;
  std::string json_file;
  std::string dataset;      // seed: written; query scenarios: read (seeded when missing)
  std::string read_url;     // isolation: the readers' URL (default --url)
  int writer_cpu = -1;      // isolation: pin the writer clients to this CPU (-1: not pinned)
  int reader_cpu = -1;      // isolation: pin the reader clients to this CPU
  int readers = 16;         // isolation: reader clients
  double paid_share = 0.5;  // seed: share of the orders paid (half of those also shipped)
  std::string queries;      // search: a file of queries, one a line (instead of a dataset)
};

struct PlacedOrder {
  std::string id;
  std::int64_t total_cents = 0;
};

// Unique per run, so that a rerun against the same database does not collide on e-mail or SKU.
std::string RunTag() {
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  const auto micros = std::chrono::duration_cast<std::chrono::microseconds>(now).count();
  return fmt::format("{:x}", static_cast<std::uint64_t>(micros) & 0xFFFFFFFFFFFULL);
}

HttpRequest Post(std::string target, const json::value& body) {
  HttpRequest request;
  request.method = "POST";
  request.target = std::move(target);
  request.body = json::serialize(body);
  return request;
}

std::optional<json::object> ParseObject(const std::string& body) {
  boost::system::error_code ec;
  auto value = json::parse(body, ec);
  if (ec || !value.is_object()) return std::nullopt;
  return std::move(value.as_object());
}

// Collects something from every successful answer, per client (no locking on the hot path).
template <class T>
class Collector {
 public:
  explicit Collector(int clients) : parts_(static_cast<std::size_t>(clients)) {}
  std::vector<T>& For(int client) { return parts_[static_cast<std::size_t>(client)]; }
  std::vector<T> Take() {
    std::vector<T> all;
    for (auto& part : parts_) {
      all.insert(all.end(), std::make_move_iterator(part.begin()),
                 std::make_move_iterator(part.end()));
    }
    return all;
  }

 private:
  std::vector<std::vector<T>> parts_;
};

// Sends `count` requests built by make(i) over `clients` connections; returns the answers'
// ids. Throws when any request fails.
std::vector<std::string> RunBatch(const Endpoint& endpoint, int clients, std::int64_t count,
                                  const std::function<HttpRequest(std::int64_t)>& make,
                                  const char* what) {
  std::atomic<std::int64_t> next{0};
  Collector<std::string> ids(clients);
  LoadOptions options;
  options.endpoint = endpoint;
  options.clients = clients;
  options.warmup = Seconds(0);
  options.duration = Seconds(3600);
  const auto result = RunLoad(
      options,
      [&](int, std::uint64_t) -> std::optional<HttpRequest> {
        const auto i = next.fetch_add(1);
        if (i >= count) return std::nullopt;
        return make(i);
      },
      [&](int client, const HttpRequest&, const HttpResponse& response, Clock::duration) {
        if (!response.ok()) return;
        if (auto body = ParseObject(response.body)) {
          if (auto* id = body->if_contains("id"); id && id->is_string()) {
            ids.For(client).emplace_back(id->as_string());
          }
        }
      });
  if (result.errors > 0 || result.ok != count) {
    throw std::runtime_error(fmt::format("seeding {} failed: {} of {} ok; first error: {}", what,
                                         result.ok, count, result.first_error));
  }
  return ids.Take();
}

// ---- server-side metrics (GET /metrics) ----

struct ServerHistogram {
  std::map<double, double> cumulative;  // le -> count
  double sum = 0;
  double count = 0;
};
using ServerMetrics = std::map<std::string, ServerHistogram>;  // by command

std::string LabelValue(std::string_view labels, std::string_view name) {
  const std::string key = std::string(name) + "=\"";
  const auto at = labels.find(key);
  if (at == std::string_view::npos) return {};
  const auto from = at + key.size();
  return std::string(labels.substr(from, labels.find('"', from) - from));
}

ServerMetrics ScrapeCommandDurations(const Endpoint& endpoint) {
  constexpr std::string_view kName = "shopcqrs_command_duration_seconds";
  HttpClient client(endpoint.host, endpoint.port, std::chrono::milliseconds(5000));
  HttpRequest request;
  request.method = "GET";
  request.target = "/metrics";
  const auto response = client.Send(request);
  ServerMetrics metrics;
  if (!response.ok()) return metrics;
  std::string_view text = response.body;
  while (!text.empty()) {
    const auto eol = text.find('\n');
    std::string_view line = text.substr(0, eol);
    text = eol == std::string_view::npos ? std::string_view{} : text.substr(eol + 1);
    if (!line.starts_with(kName)) continue;
    const auto brace = line.find('{');
    const auto close = line.find('}');
    const auto space = line.rfind(' ');
    if (brace == std::string_view::npos || close == std::string_view::npos ||
        space == std::string_view::npos) {
      continue;
    }
    const auto suffix = line.substr(kName.size(), brace - kName.size());
    const auto labels = line.substr(brace, close - brace);
    const double value = std::strtod(std::string(line.substr(space + 1)).c_str(), nullptr);
    auto& histogram = metrics[LabelValue(labels, "command")];
    if (suffix == "_bucket") {
      const auto le = LabelValue(labels, "le");
      const double bound = le == "+Inf" ? INFINITY : std::strtod(le.c_str(), nullptr);
      histogram.cumulative[bound] = value;
    } else if (suffix == "_sum") {
      histogram.sum = value;
    } else if (suffix == "_count") {
      histogram.count = value;
    }
  }
  return metrics;
}

struct ServerStats {
  double count = 0;
  double mean_ms = 0;
  double p50_ms = 0;
  double p99_ms = 0;
};

// Like PromQL histogram_quantile: linear interpolation inside the bucket.
double BucketQuantile(const std::map<double, double>& cumulative, double q) {
  if (cumulative.empty()) return 0;
  const double total = cumulative.rbegin()->second;
  if (total <= 0) return 0;
  const double rank = q * total;
  double lower_bound = 0;
  double lower_count = 0;
  for (const auto& [bound, count] : cumulative) {
    if (count >= rank) {
      if (std::isinf(bound)) return lower_bound;
      const double in_bucket = count - lower_count;
      if (in_bucket <= 0) return bound;
      return lower_bound + (bound - lower_bound) * (rank - lower_count) / in_bucket;
    }
    lower_bound = bound;
    lower_count = count;
  }
  return lower_bound;
}

std::optional<ServerStats> Delta(const ServerMetrics& before, const ServerMetrics& after,
                                 const std::string& command) {
  auto it = after.find(command);
  if (it == after.end()) return std::nullopt;
  ServerHistogram delta = it->second;
  if (auto prior = before.find(command); prior != before.end()) {
    delta.sum -= prior->second.sum;
    delta.count -= prior->second.count;
    for (auto& [bound, count] : delta.cumulative) {
      if (auto b = prior->second.cumulative.find(bound); b != prior->second.cumulative.end()) {
        count -= b->second;
      }
    }
  }
  if (delta.count <= 0) return std::nullopt;
  ServerStats stats;
  stats.count = delta.count;
  stats.mean_ms = delta.sum / delta.count * 1e3;
  stats.p50_ms = BucketQuantile(delta.cumulative, 0.50) * 1e3;
  stats.p99_ms = BucketQuantile(delta.cumulative, 0.99) * 1e3;
  return stats;
}

// ---- reporting ----

double Ms(std::int64_t nanos) { return static_cast<double>(nanos) / 1e6; }

json::array Distribution(const LatencyHistogram& h) {
  json::array points;
  for (double p : {0.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 75.0, 80.0, 85.0, 90.0, 95.0,
                   97.5, 99.0, 99.5, 99.9, 99.99, 100.0}) {
    points.push_back(json::array{p, Ms(h.ValueAtPercentile(p))});
  }
  return points;
}

json::object LatencyJson(const LatencyHistogram& h) {
  return {{"distribution", Distribution(h)},
          {"count", h.count()},
          {"min", Ms(h.min())},
          {"mean", h.mean() / 1e6},
          {"p50", Ms(h.ValueAtPercentile(50))},
          {"p90", Ms(h.ValueAtPercentile(90))},
          {"p99", Ms(h.ValueAtPercentile(99))},
          {"p99_9", Ms(h.ValueAtPercentile(99.9))},
          {"max", Ms(h.max())}};
}

void PrintTable(const Options& options, const LoadResult& r,
                const std::optional<ServerStats>& server, const std::string& command) {
  const auto& h = r.latency;
  const bool open = options.rate > 0;
  fmt::print("\n{:<8} {:<14} {:>7} {:>8} {:>8} {:>7} {:>10} {:>9} {:>9} {:>9} {:>9} {:>9}\n",
             "scenario", "mode", "clients", "window_s", "ok", "errors", "ok/s", "p50_ms", "p90_ms",
             "p99_ms", "p99.9_ms", "max_ms");
  fmt::print(
      "{:<8} {:<14} {:>7} {:>8.1f} {:>8} {:>7} {:>10.1f} {:>9.2f} {:>9.2f} {:>9.2f} "
      "{:>9.2f} {:>9.2f}\n",
      options.scenario, open ? fmt::format("open@{:g}/s", options.rate) : "closed", options.clients,
      r.window_seconds, r.ok, r.errors, r.throughput, Ms(h.ValueAtPercentile(50)),
      Ms(h.ValueAtPercentile(90)), Ms(h.ValueAtPercentile(99)), Ms(h.ValueAtPercentile(99.9)),
      Ms(h.max()));
  std::string statuses;
  for (const auto& [status, count] : r.statuses) {
    statuses += fmt::format(" {}={}",
                            status == 0 ? std::string("transport") : std::to_string(status), count);
  }
  fmt::print("statuses:{}  (mean {:.2f} ms, warm-up requests {}{})\n", statuses, h.mean() / 1e6,
             r.warmup_requests, r.exhausted ? ", SOURCE EXHAUSTED: window cut short" : "");
  if (server) {
    fmt::print(
        "server-side {} (shopcqrs_command_duration_seconds, incl. warm-up): n={:.0f} mean {:.2f} "
        "ms, p50~{:.2f} ms, p99~{:.2f} ms\n",
        command, server->count, server->mean_ms, server->p50_ms, server->p99_ms);
  }
  if (!r.first_error.empty()) fmt::print("first error: {}\n", r.first_error.substr(0, 300));
}

// ---- scenarios ----

struct Seeded {
  std::vector<std::string> customers;
  std::vector<std::string> products;
};

Seeded SeedCatalog(const Options& options, const Endpoint& endpoint, const std::string& tag) {
  Seeded seeded;
  const auto t0 = Clock::now();
  seeded.customers = RunBatch(
      endpoint, options.clients, options.customers,
      [&](std::int64_t i) {
        return Post("/v1/customers",
                    json::object{{"name", fmt::format("Bench Customer {}", i)},
                                 {"email", fmt::format("bench-{}-c{}@example.com", tag, i)}});
      },
      "customers");
  seeded.products = RunBatch(
      endpoint, options.clients, options.products,
      [&](std::int64_t i) {
        return Post("/v1/products", json::object{{"sku", fmt::format("bench-{}-p{}", tag, i)},
                                                 {"name", fmt::format("Bench Product {}", i)},
                                                 {"price_cents", 100 + (i * 7919) % 9900},
                                                 {"stock", 1'000'000'000}});
      },
      "products");
  fmt::print("setup: seeded {} customers and {} products in {:.1f} s\n", seeded.customers.size(),
             seeded.products.size(), Seconds(Clock::now() - t0).count());
  return seeded;
}

// One random generator per client (each client thread uses its own), seeded apart.
std::vector<std::mt19937_64> ClientRngs(int clients) {
  std::vector<std::mt19937_64> rngs;
  for (int c = 0; c < clients; ++c) {
    rngs.emplace_back(std::random_device{}() ^ (static_cast<std::uint64_t>(c) << 32));
  }
  return rngs;
}

// Builds PlaceOrder requests: a random customer, three distinct random products, quantity 1.
class PlaceRequests {
 public:
  PlaceRequests(const Seeded& seeded, int clients) : seeded_(seeded), rngs_(ClientRngs(clients)) {}

  HttpRequest Next(int client) {
    auto& rng = rngs_[static_cast<std::size_t>(client)];
    const auto& products = seeded_.products;
    std::uniform_int_distribution<std::size_t> customer(0, seeded_.customers.size() - 1);
    std::uniform_int_distribution<std::size_t> product(0, products.size() - 1);
    std::size_t picked[3];
    for (int n = 0; n < 3; ++n) {
      std::size_t p;
      do {
        p = product(rng);
      } while (std::find(picked, picked + n, p) != picked + n);
      picked[n] = p;
    }
    json::array lines;
    for (auto p : picked)
      lines.push_back(json::object{{"product_id", products[p]}, {"quantity", 1}});
    return Post("/v1/orders", json::object{{"customer_id", seeded_.customers[customer(rng)]},
                                           {"lines", std::move(lines)}});
  }

 private:
  const Seeded& seeded_;
  std::vector<std::mt19937_64> rngs_;
};

LoadOptions MeasuredLoad(const Options& options, const Endpoint& endpoint) {
  LoadOptions load;
  load.endpoint = endpoint;
  load.clients = options.clients;
  load.mode = options.rate > 0 ? LoadMode::kOpenLoop : LoadMode::kClosedLoop;
  load.rate = options.rate;
  load.warmup = Seconds(options.warmup);
  load.duration = Seconds(options.duration);
  load.timeout = std::chrono::milliseconds(options.timeout_ms);
  return load;
}

// Places orders for the pay scenario: `options.orders` of them, or (0) as many as the clients
// place in setup_factor x (warm-up + duration).
std::vector<PlacedOrder> PlaceOrdersForPay(const Options& options, const Endpoint& endpoint,
                                           const Seeded& seeded) {
  PlaceRequests place(seeded, options.clients);
  Collector<PlacedOrder> placed(options.clients);
  std::atomic<std::int64_t> next{0};
  LoadOptions load;
  load.endpoint = endpoint;
  load.clients = options.clients;
  load.warmup = Seconds(0);
  load.duration = Seconds(
      options.orders > 0 ? 3600.0 : options.setup_factor * (options.warmup + options.duration));
  const auto t0 = Clock::now();
  const auto result = RunLoad(
      load,
      [&](int client, std::uint64_t) -> std::optional<HttpRequest> {
        if (options.orders > 0 && next.fetch_add(1) >= options.orders) return std::nullopt;
        return place.Next(client);
      },
      [&](int client, const HttpRequest&, const HttpResponse& response, Clock::duration) {
        if (!response.ok()) return;
        if (auto body = ParseObject(response.body)) {
          auto* id = body->if_contains("id");
          auto* total = body->if_contains("total_cents");
          if (id && id->is_string() && total && total->is_int64()) {
            placed.For(client).push_back(
                PlacedOrder{std::string(id->as_string()), total->as_int64()});
          }
        }
      });
  auto orders = placed.Take();
  const double seconds = Seconds(Clock::now() - t0).count();
  fmt::print("setup: placed {} orders to pay in {:.1f} s ({:.0f}/s, {} errors)\n", orders.size(),
             seconds, static_cast<double>(orders.size()) / seconds, result.errors);
  if (orders.empty()) {
    throw std::runtime_error("setup placed no orders; first error: " + result.first_error);
  }
  return orders;
}

// ---- query scenarios ----

// What the query scenarios work on: seeded through the API by `seed` (or by the scenario
// itself), kept in a JSON file so that several services over the same data (separated and
// single-database mode) are measured on identical rows.
struct Dataset {
  Seeded seeded;
  std::vector<PlacedOrder> orders;
};

void SaveDataset(const Dataset& d, const std::string& file) {
  json::array customers, products, orders;
  for (const auto& c : d.seeded.customers) customers.emplace_back(c);
  for (const auto& p : d.seeded.products) products.emplace_back(p);
  for (const auto& o : d.orders) orders.push_back(json::array{json::string(o.id), o.total_cents});
  std::ofstream out(file, std::ios::trunc);
  out << json::serialize(
             json::object{{"customers", customers}, {"products", products}, {"orders", orders}})
      << '\n';
  if (!out) throw std::runtime_error("cannot write " + file);
}

Dataset LoadDataset(const std::string& file) {
  std::ifstream in(file);
  if (!in) throw std::runtime_error("cannot read " + file);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto root = json::parse(text).as_object();
  Dataset d;
  for (const auto& c : root.at("customers").as_array())
    d.seeded.customers.emplace_back(c.as_string());
  for (const auto& p : root.at("products").as_array())
    d.seeded.products.emplace_back(p.as_string());
  for (const auto& o : root.at("orders").as_array()) {
    const auto& pair = o.as_array();
    d.orders.push_back(PlacedOrder{std::string(pair.at(0).as_string()), pair.at(1).as_int64()});
  }
  if (d.seeded.customers.empty() || d.orders.empty()) {
    throw std::runtime_error(file + " holds no customers or orders");
  }
  return d;
}

// Sends `request` until it answers 2xx; answers the body.
std::string SendOk(const Endpoint& endpoint, const HttpRequest& request) {
  HttpClient client(endpoint.host, endpoint.port, std::chrono::milliseconds(15'000));
  for (int attempt = 0; attempt < 50; ++attempt) {
    const auto response = client.Send(request);
    if (response.ok()) return response.body;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  throw std::runtime_error("no 2xx answer to " + request.method + " " + request.target);
}

// Places the orders, pays `paid_share` of them and ships half of those; then waits until the
// query side has applied all of it (a last command's consistency token).
Dataset SeedDataset(const Options& options, const Endpoint& endpoint, const std::string& tag) {
  Dataset d;
  d.seeded = SeedCatalog(options, endpoint, tag);
  Options place = options;
  place.orders = std::max<std::int64_t>(options.orders, 1);
  d.orders = PlaceOrdersForPay(place, endpoint, d.seeded);
  const auto paid = static_cast<std::int64_t>(static_cast<double>(d.orders.size()) *
                                              std::clamp(options.paid_share, 0.0, 1.0));
  if (paid > 0) {
    RunBatch(
        endpoint, options.clients, paid,
        [&](std::int64_t i) {
          const auto& o = d.orders[static_cast<std::size_t>(i)];
          return Post(fmt::format("/v1/orders/{}/pay", o.id),
                      json::object{{"amount_cents", o.total_cents},
                                   {"payment_reference", fmt::format("seed-{}-{}", tag, i)}});
        },
        "payments");
    RunBatch(
        endpoint, options.clients, paid / 2,
        [&](std::int64_t i) {
          return Post(fmt::format("/v1/orders/{}/ship", d.orders[static_cast<std::size_t>(i)].id),
                      json::object{{"tracking_number", fmt::format("TRK{}{:06}", tag, i)}});
        },
        "shipments");
  }
  // A command committed after all of the above; its token covers everything.
  const auto body = SendOk(
      endpoint, Post("/v1/customers", json::object{{"name", "Bench Sync"},
                                                   {"email", fmt::format("sync-{}@x.org", tag)}}));
  const auto created = ParseObject(body);
  if (!created) throw std::runtime_error("seed: unexpected answer " + body);
  HttpRequest wait;
  wait.method = "GET";
  wait.target = fmt::format("/v1/customers/{}", created->at("id").as_string());
  wait.headers = {
      {"X-Consistency-Token", std::string(created->at("consistency_token").as_string())},
      {"X-Consistency-Wait-Ms", "10000"}};
  // On the query side, which may be another process (--read-url).
  const auto read_endpoint = ParseUrl(options.read_url.empty() ? options.url : options.read_url);
  SendOk(read_endpoint ? *read_endpoint : endpoint, wait);
  fmt::print("setup: {} orders ({} paid, {} shipped), query side caught up\n", d.orders.size(),
             paid, paid / 2);
  return d;
}

HttpRequest Get(std::string target) {
  HttpRequest request;
  request.method = "GET";
  request.target = std::move(target);
  return request;
}

// Builds the GET requests of the query scenarios over a dataset.
class QueryRequests {
 public:
  QueryRequests(const Dataset& dataset, int clients, std::vector<std::string> queries = {})
      : d_(dataset), rngs_(ClientRngs(clients)), queries_(std::move(queries)) {}

  HttpRequest View(int client) {
    return Get("/v1/orders/" + d_.orders[Pick(client, d_.orders.size())].id);
  }
  HttpRequest History(int client) {
    return Get(fmt::format("/v1/customers/{}/orders?limit=20",
                           d_.seeded.customers[Pick(client, d_.seeded.customers.size())]));
  }
  // Two words: a customer's name and a product's number ("customer 17 product 3"-like); with
  // --queries, a random line of that file.
  HttpRequest Search(int client) {
    if (!queries_.empty()) {
      return Get(fmt::format("/v1/search/orders?q={}&limit=20",
                             UrlEncode(queries_[Pick(client, queries_.size())])));
    }
    const auto c = Pick(client, d_.seeded.customers.size());
    return Get(fmt::format("/v1/search/orders?q=customer+{}&limit=20", c));
  }
  HttpRequest Customer(int client) {
    return Get("/v1/customers/" + d_.seeded.customers[Pick(client, d_.seeded.customers.size())]);
  }
  // A realistic blend: mostly order views and histories, some customers, search, lists, top.
  HttpRequest Mix(int client) {
    const auto roll = Pick(client, 100);
    if (roll < 50) return View(client);
    if (roll < 70) return History(client);
    if (roll < 80) return Customer(client);
    if (roll < 90) return Search(client);
    if (roll < 95) return Get("/v1/orders?limit=20");
    return Get("/v1/products/top?limit=10");
  }
  HttpRequest Next(const std::string& scenario, int client) {
    if (scenario == "view") return View(client);
    if (scenario == "history") return History(client);
    if (scenario == "search") return Search(client);
    return Mix(client);
  }

 private:
  std::size_t Pick(int client, std::size_t n) {
    return static_cast<std::size_t>(rngs_[static_cast<std::size_t>(client)]() % n);
  }
  static std::string UrlEncode(std::string_view text) {
    std::string out;
    for (unsigned char ch : text) {
      if (std::isalnum(ch) || ch == '-' || ch == '_' || ch == '.' || ch == '~') {
        out.push_back(static_cast<char>(ch));
      } else {
        out += fmt::format("%{:02X}", ch);
      }
    }
    return out;
  }
  const Dataset& d_;
  std::vector<std::mt19937_64> rngs_;
  std::vector<std::string> queries_;
};

// The lines of a --queries file (empty lines skipped).
std::vector<std::string> LoadQueries(const std::string& file) {
  std::ifstream in(file);
  if (!in) throw std::runtime_error("cannot read " + file);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) lines.push_back(line);
  }
  if (lines.empty()) throw std::runtime_error(file + " holds no queries");
  return lines;
}

json::object ResultJson(const Options& options, const LoadResult& result) {
  json::object statuses;
  for (const auto& [status, count] : result.statuses) {
    statuses[status == 0 ? std::string("transport_error") : std::to_string(status)] = count;
  }
  json::array per_second;
  for (auto n : result.ok_per_second) per_second.push_back(n);
  json::array urls, ok_per_url;
  for (const auto& u : options.urls) urls.emplace_back(u);
  for (auto n : result.ok_per_endpoint) ok_per_url.push_back(n);
  return json::object{
      {"scenario", options.scenario},
      {"url", options.url},
      {"urls", std::move(urls)},
      {"ok_per_url", std::move(ok_per_url)},
      {"mode", options.rate > 0 ? "open" : "closed"},
      {"clients", options.clients},
      {"rate", options.rate > 0 ? json::value(options.rate) : json::value(nullptr)},
      {"warmup_s", options.warmup},
      {"duration_s", options.duration},
      {"window_s", result.window_seconds},
      {"ok", result.ok},
      {"errors", result.errors},
      {"statuses", std::move(statuses)},
      {"throughput", result.throughput},
      {"exhausted", result.exhausted},
      {"latency_ms", LatencyJson(result.latency)},
      {"ok_per_second", std::move(per_second)},
      {"first_error", result.first_error.substr(0, 300)},
  };
}

void WriteJson(const std::string& file, const json::object& out) {
  if (file.empty()) return;
  std::ofstream stream(file, std::ios::trunc);
  stream << json::serialize(out) << '\n';
  if (!stream) throw std::runtime_error("cannot write " + file);
}

Dataset DatasetFor(const Options& options, const Endpoint& endpoint) {
  if (!options.dataset.empty() && std::ifstream(options.dataset)) {
    return LoadDataset(options.dataset);
  }
  Options seed = options;
  if (seed.orders <= 0) seed.orders = 2000;
  auto d = SeedDataset(seed, endpoint, RunTag());
  if (!options.dataset.empty()) SaveDataset(d, options.dataset);
  return d;
}

int RunQuery(const Options& options, const std::vector<Endpoint>& endpoints) {
  const bool from_file = options.scenario == "search" && !options.queries.empty();
  const Dataset dataset = from_file ? Dataset{} : DatasetFor(options, endpoints.front());
  QueryRequests requests(dataset, options.clients,
                         from_file ? LoadQueries(options.queries) : std::vector<std::string>{});
  LoadOptions load = MeasuredLoad(options, endpoints.front());
  if (endpoints.size() > 1) load.endpoints = endpoints;
  const auto result = RunLoad(load, [&](int client, std::uint64_t) -> std::optional<HttpRequest> {
    return requests.Next(options.scenario, client);
  });
  PrintTable(options, result, std::nullopt, "");
  if (endpoints.size() > 1) {
    for (std::size_t i = 0; i < endpoints.size(); ++i) {
      fmt::print("  {}: {} clients, {:.1f} ok/s\n", options.urls[i],
                 (options.clients + static_cast<int>(endpoints.size() - 1 - i)) /
                     static_cast<int>(endpoints.size()),
                 result.window_seconds > 0
                     ? static_cast<double>(result.ok_per_endpoint[i]) / result.window_seconds
                     : 0.0);
    }
  }
  WriteJson(options.json_file, ResultJson(options, result));
  return result.ok > 0 && result.errors == 0 ? 0 : 2;
}

// The writers of the isolation scenario: each client places an order and then pays it, so
// half of the requests are PlaceOrder and half PayOrder. Latency per command, measured window
// only (requests sent after the warm-up).
class WriterPhase {
 public:
  WriterPhase(const Options& options, const Endpoint& endpoint, const Seeded& seeded,
              std::string tag)
      : options_(options),
        endpoint_(endpoint),
        place_(seeded, options.clients),
        pending_(static_cast<std::size_t>(options.clients)),
        place_latency_(static_cast<std::size_t>(options.clients)),
        pay_latency_(static_cast<std::size_t>(options.clients)),
        tag_(std::move(tag)) {}

  json::object Run(const std::string& phase) {
    for (auto& p : pending_) p.reset();
    for (auto& h : place_latency_) h = LatencyHistogram();
    for (auto& h : pay_latency_) h = LatencyHistogram();
    const auto measured_from =
        Clock::now() + std::chrono::duration_cast<Clock::duration>(Seconds(options_.warmup));
    const auto result = RunLoad(
        MeasuredLoad(options_, endpoint_),
        [&](int client, std::uint64_t sequence) -> std::optional<HttpRequest> {
          auto& pending = pending_[static_cast<std::size_t>(client)];
          if (!pending) return place_.Next(client);
          auto request =
              Post(fmt::format("/v1/orders/{}/pay", pending->id),
                   json::object{{"amount_cents", pending->total_cents},
                                {"payment_reference",
                                 fmt::format("iso-{}-{}-{}-{}", tag_, phase, client, sequence)}});
          pending.reset();
          return request;
        },
        [&](int client, const HttpRequest& request, const HttpResponse& response,
            Clock::duration latency) {
          const auto c = static_cast<std::size_t>(client);
          const bool is_place = request.target == "/v1/orders";
          if (is_place && response.ok()) {
            if (auto body = ParseObject(response.body)) {
              auto* id = body->if_contains("id");
              auto* total = body->if_contains("total_cents");
              if (id && id->is_string() && total && total->is_int64()) {
                pending_[c] = PlacedOrder{std::string(id->as_string()), total->as_int64()};
              }
            }
          }
          if (response.ok() && Clock::now() - latency >= measured_from) {
            (is_place ? place_latency_ : pay_latency_)[c].Record(
                std::chrono::duration_cast<std::chrono::nanoseconds>(latency).count());
          }
        });
    LatencyHistogram place, pay;
    for (const auto& h : place_latency_) place.Merge(h);
    for (const auto& h : pay_latency_) pay.Merge(h);
    Options named = options_;
    named.scenario = "isolation-writers-" + phase;
    PrintTable(named, result, std::nullopt, "");
    fmt::print("  place p50 {:.2f} ms p99 {:.2f} ms | pay p50 {:.2f} ms p99 {:.2f} ms\n",
               Ms(place.ValueAtPercentile(50)), Ms(place.ValueAtPercentile(99)),
               Ms(pay.ValueAtPercentile(50)), Ms(pay.ValueAtPercentile(99)));
    auto out = ResultJson(named, result);
    out["place_latency_ms"] = LatencyJson(place);
    out["pay_latency_ms"] = LatencyJson(pay);
    return out;
  }

 private:
  const Options& options_;
  const Endpoint& endpoint_;
  PlaceRequests place_;
  std::vector<std::optional<PlacedOrder>> pending_;
  std::vector<LatencyHistogram> place_latency_;
  std::vector<LatencyHistogram> pay_latency_;
  std::string tag_;
};

// Pins the calling thread (and the threads it starts afterwards) to `cpu`; -1: leaves it.
void PinThisThread(int cpu) {
  if (cpu < 0) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (sched_setaffinity(0, sizeof(set), &set) != 0) {
    throw std::runtime_error(fmt::format("cannot pin to CPU {}", cpu));
  }
}

int RunIsolation(const Options& options, const Endpoint& endpoint) {
  PinThisThread(options.writer_cpu);
  const auto read_endpoint = ParseUrl(options.read_url.empty() ? options.url : options.read_url);
  if (!read_endpoint) throw std::runtime_error("--read-url must look like http://HOST:PORT");
  const Dataset dataset = DatasetFor(options, endpoint);
  const std::string tag = RunTag();
  WriterPhase writers(options, endpoint, dataset.seeded, tag);

  fmt::print("isolation: idle phase ({} writer clients, no readers)\n", options.clients);
  auto idle = writers.Run("idle");

  fmt::print("isolation: saturated phase ({} writer clients + {} reader clients, mix)\n",
             options.clients, options.readers);
  std::fflush(stdout);  // scripts watch for this line to mark the phase
  Options reader_options = options;
  reader_options.scenario = "isolation-readers";
  reader_options.clients = options.readers;
  reader_options.url = options.read_url.empty() ? options.url : options.read_url;
  reader_options.urls = {reader_options.url};
  // The readers start first and stop after the writers' window.
  reader_options.warmup = 1.0;
  reader_options.duration = options.warmup + options.duration;
  QueryRequests queries(dataset, options.readers);
  LoadResult readers;
  std::thread reader_thread([&] {
    PinThisThread(options.reader_cpu);
    readers = RunLoad(MeasuredLoad(reader_options, *read_endpoint),
                      [&](int client, std::uint64_t) -> std::optional<HttpRequest> {
                        return queries.Mix(client);
                      });
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  auto saturated = writers.Run("saturated");
  reader_thread.join();
  PrintTable(reader_options, readers, std::nullopt, "");
  saturated["readers"] = ResultJson(reader_options, readers);
  saturated["readers"].as_object()["readers"] = options.readers;

  const double ratio =
      idle.at("throughput").as_double() > 0
          ? saturated.at("throughput").as_double() / idle.at("throughput").as_double()
          : 0.0;
  fmt::print("isolation: write throughput saturated / idle = {:.3f}\n", ratio);
  WriteJson(options.json_file, json::object{{"scenario", "isolation"},
                                            {"url", options.url},
                                            {"read_url", reader_options.url},
                                            {"writers", options.clients},
                                            {"readers", options.readers},
                                            {"writer_cpu", options.writer_cpu},
                                            {"reader_cpu", options.reader_cpu},
                                            {"idle", std::move(idle)},
                                            {"saturated", std::move(saturated)},
                                            {"ratio", ratio}});
  return 0;
}

int RunSeed(const Options& options, const Endpoint& endpoint) {
  if (options.dataset.empty()) throw std::runtime_error("seed needs --dataset FILE");
  Options seed = options;
  if (seed.orders <= 0) seed.orders = 2000;
  SaveDataset(SeedDataset(seed, endpoint, RunTag()), options.dataset);
  fmt::print("seed: wrote {}\n", options.dataset);
  return 0;
}

int Run(const Options& options) {
  std::vector<Endpoint> endpoints;
  for (const auto& url : options.urls) {
    const auto parsed = ParseUrl(url);
    if (!parsed) throw std::runtime_error("--url must look like http://HOST:PORT, not " + url);
    endpoints.push_back(*parsed);
  }
  const auto endpoint = std::optional<Endpoint>(endpoints.front());

  // Wait for the services.
  for (std::size_t i = 0; i < endpoints.size(); ++i) {
    HttpClient probe(endpoints[i].host, endpoints[i].port, std::chrono::milliseconds(2000));
    HttpRequest healthz;
    healthz.method = "GET";
    healthz.target = "/healthz";
    const auto deadline = Clock::now() + std::chrono::seconds(30);
    while (!probe.Send(healthz).ok()) {
      if (Clock::now() > deadline)
        throw std::runtime_error("service not healthy at " + options.urls[i]);
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  }

  if (options.scenario == "seed") return RunSeed(options, *endpoint);
  if (options.scenario == "isolation") return RunIsolation(options, *endpoint);
  if (options.scenario != "place" && options.scenario != "pay" && options.scenario != "visible") {
    return RunQuery(options, endpoints);
  }

  const std::string tag = RunTag();
  const auto setup_start = Clock::now();
  const Seeded seeded = SeedCatalog(options, *endpoint, tag);
  const LoadOptions load = MeasuredLoad(options, *endpoint);

  LoadResult result;
  ServerMetrics before, after;
  std::string command;
  json::object setup{{"customers", seeded.customers.size()}, {"products", seeded.products.size()}};
  json::object visible_result;  // the visible scenario's lag

  if (options.scenario == "place") {
    command = "place_order";
    PlaceRequests place(seeded, options.clients);
    setup["seconds"] = Seconds(Clock::now() - setup_start).count();
    before = ScrapeCommandDurations(*endpoint);
    result = RunLoad(load, [&](int client, std::uint64_t) -> std::optional<HttpRequest> {
      return place.Next(client);
    });
    after = ScrapeCommandDurations(*endpoint);
  } else {
    command = "pay_order";
    const auto orders = PlaceOrdersForPay(options, *endpoint, seeded);
    setup["orders"] = orders.size();
    setup["seconds"] = Seconds(Clock::now() - setup_start).count();
    std::atomic<std::size_t> next{0};
    // visible: per client, a connection of its own for the token reads and the lags measured.
    const bool visible = options.scenario == "visible";
    std::vector<std::unique_ptr<HttpClient>> readers;
    std::vector<std::vector<std::pair<Clock::time_point, std::int64_t>>> lags(
        static_cast<std::size_t>(options.clients));
    std::atomic<std::int64_t> read_errors{0};
    std::string first_read_error;
    std::mutex read_error_mutex;
    if (visible) {
      for (int c = 0; c < options.clients; ++c) {
        readers.push_back(std::make_unique<HttpClient>(endpoint->host, endpoint->port,
                                                       std::chrono::milliseconds(15'000)));
      }
    }
    ResponseHook read_back;
    if (visible) {
      read_back = [&](int client, const HttpRequest& request, const HttpResponse& response,
                      Clock::duration) {
        if (!response.ok()) return;
        const auto answered = Clock::now();
        const auto* token = response.Header("X-Consistency-Token");
        if (!token) {
          ++read_errors;
          return;
        }
        // "/v1/orders/{id}/pay" -> "/v1/orders/{id}"
        HttpRequest read;
        read.method = "GET";
        read.target = request.target.substr(0, request.target.size() - 4);
        read.headers = {{"X-Consistency-Token", *token}, {"X-Consistency-Wait-Ms", "10000"}};
        const auto answer = readers[static_cast<std::size_t>(client)]->Send(read);
        if (answer.status != 200) {
          ++read_errors;
          std::lock_guard lock(read_error_mutex);
          if (first_read_error.empty()) {
            first_read_error = fmt::format("{} {}", answer.status, answer.error + answer.body);
          }
          return;
        }
        lags[static_cast<std::size_t>(client)].emplace_back(
            answered,
            std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - answered).count());
      };
    }
    before = ScrapeCommandDurations(*endpoint);
    const auto measure_from =
        Clock::now() + std::chrono::duration_cast<Clock::duration>(Seconds(options.warmup));
    result = RunLoad(
        load,
        [&](int, std::uint64_t) -> std::optional<HttpRequest> {
          const auto i = next.fetch_add(1);
          if (i >= orders.size()) return std::nullopt;
          return Post(fmt::format("/v1/orders/{}/pay", orders[i].id),
                      json::object{{"amount_cents", orders[i].total_cents},
                                   {"payment_reference", fmt::format("bench-{}-{}", tag, i)}});
        },
        read_back);
    after = ScrapeCommandDurations(*endpoint);
    if (visible) {
      LatencyHistogram lag;
      for (const auto& part : lags) {
        for (const auto& [at, ns] : part) {
          if (at >= measure_from) lag.Record(ns);
        }
      }
      auto ms = [&](double p) { return static_cast<double>(lag.ValueAtPercentile(p)) / 1e6; };
      fmt::print(
          "visible lag (pay answered -> GET with its token 200): {} reads, {} failed; p50 {:.2f} "
          "ms, p90 {:.2f} ms, p99 {:.2f} ms, p99.9 {:.2f} ms, max {:.2f} ms\n",
          lag.count(), read_errors.load(), ms(50), ms(90), ms(99), ms(99.9),
          static_cast<double>(lag.max()) / 1e6);
      if (!first_read_error.empty()) fmt::print("first failed read: {}\n", first_read_error);
      visible_result = json::object{{"reads", lag.count()},
                                    {"failed", read_errors.load()},
                                    {"p50_ms", ms(50)},
                                    {"p90_ms", ms(90)},
                                    {"p99_ms", ms(99)},
                                    {"p999_ms", ms(99.9)},
                                    {"max_ms", static_cast<double>(lag.max()) / 1e6}};
    }
  }

  const auto server = Delta(before, after, command);
  PrintTable(options, result, server, command);

  if (!options.json_file.empty()) {
    json::object out = ResultJson(options, result);
    out["setup"] = std::move(setup);
    if (!visible_result.empty()) out["visible"] = std::move(visible_result);
    if (server) {
      out["server"] = json::object{{"command", command},
                                   {"count", server->count},
                                   {"mean_ms", server->mean_ms},
                                   {"p50_ms", server->p50_ms},
                                   {"p99_ms", server->p99_ms}};
    }
    WriteJson(options.json_file, out);
  }
  return result.ok > 0 ? 0 : 2;
}

}  // namespace
}  // namespace shopcqrs::bench

int main(int argc, char** argv) {
  using shopcqrs::bench::Options;
  Options options;
  CLI::App cli{"shopcqrs-bench: HTTP load scenarios against a running shopcqrs"};
  cli.require_subcommand(1);
  auto add_common = [&](CLI::App* command) {
    command
        ->add_option("--url", options.urls,
                     "base URL of the service (default http://127.0.0.1:8080); query scenarios "
                     "take several (repeated or comma-separated) and spread the clients over "
                     "them round-robin")
        ->delimiter(',');
    command->add_option("-c,--clients", options.clients, "keep-alive connections, one thread each")
        ->capture_default_str()
        ->check(CLI::Range(1, 4096));
    command->add_option("-d,--duration", options.duration, "measured seconds")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    command->add_option("--warmup", options.warmup, "unrecorded warm-up seconds")
        ->capture_default_str()
        ->check(CLI::NonNegativeNumber);
    command
        ->add_option("--rate", options.rate,
                     "open loop at this total rate (requests/s); 0 = closed loop")
        ->capture_default_str()
        ->check(CLI::NonNegativeNumber);
    command->add_option("--timeout-ms", options.timeout_ms, "per-request timeout")
        ->capture_default_str();
    command->add_option("--customers", options.customers, "customers to seed")
        ->capture_default_str()
        ->check(CLI::Range(1, 1'000'000));
    command->add_option("--products", options.products, "products to seed (>= 3)")
        ->capture_default_str()
        ->check(CLI::Range(3, 1'000'000));
    command->add_option("--json", options.json_file, "write the result as JSON to this file");
  };
  auto* place = cli.add_subcommand("place", "PlaceOrder: 3 lines of distinct products, qty 1");
  add_common(place);
  auto* pay = cli.add_subcommand("pay", "PayOrder: each request pays a distinct placed order");
  auto* visible = cli.add_subcommand(
      "visible", "PayOrder, then GET the order with the command's consistency token (lag)");
  for (auto* command : {pay, visible}) {
    add_common(command);
    command->add_option("--orders", options.orders, "orders to place in setup (0 = time-based)")
        ->capture_default_str();
    command
        ->add_option("--setup-factor", options.setup_factor,
                     "with --orders 0: place orders for FACTOR x (warm-up + duration) seconds")
        ->capture_default_str();
  }
  auto add_dataset = [&](CLI::App* command) {
    command->add_option("--dataset", options.dataset,
                        "dataset JSON (ids of customers, products, orders); seeded and written "
                        "when the file is missing");
    command->add_option("--orders", options.orders, "orders to seed when seeding (default 2000)")
        ->capture_default_str();
    command->add_option("--paid-share", options.paid_share, "seeding: share of orders paid")
        ->capture_default_str();
    command->add_option("--read-url", options.read_url,
                        "a query process where seeding waits for the query side (default --url; "
                        "when commands and queries are served apart); isolation: the readers'");
  };
  std::vector<CLI::App*> others;
  for (const char* name : {"seed", "view", "history", "search", "mix", "isolation"}) {
    const std::map<std::string, std::string> about{
        {"seed", "seed customers, products and orders (some paid, shipped) into --dataset"},
        {"view", "GET /v1/orders/{id} of random seeded orders"},
        {"history", "GET /v1/customers/{id}/orders of random seeded customers"},
        {"search", "GET /v1/search/orders?q=customer+N"},
        {"mix", "50% view, 20% history, 10% customer, 10% search, 5% list, 5% top products"},
        {"isolation", "place/pay writers alone, then while --readers clients run the mix"}};
    auto* command = cli.add_subcommand(name, about.at(name));
    add_common(command);
    add_dataset(command);
    if (std::string_view(name) == "search") {
      command->add_option("--queries", options.queries,
                          "a file of queries, one a line, to draw from instead of the dataset");
    }
    others.push_back(command);
  }
  others.back()
      ->add_option("--readers", options.readers, "isolation: reader clients (mix)")
      ->capture_default_str()
      ->check(CLI::Range(0, 4096));
  others.back()->add_option("--writer-cpu", options.writer_cpu,
                            "isolation: pin the writer clients to this CPU");
  others.back()->add_option("--reader-cpu", options.reader_cpu,
                            "isolation: pin the reader clients to this CPU");
  CLI11_PARSE(cli, argc, argv);
  if (options.urls.empty()) options.urls.push_back(options.url);
  options.url = options.urls.front();
  options.scenario = *place ? "place" : *visible ? "visible" : "pay";
  for (auto* command : others) {
    if (*command) options.scenario = command->get_name();
  }
  try {
    return shopcqrs::bench::Run(options);
  } catch (const std::exception& error) {
    std::cerr << "shopcqrs-bench: " << error.what() << std::endl;
    return 1;
  }
}
