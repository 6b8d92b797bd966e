// shopcqrs-bench: HTTP load scenarios against a running shopcqrs.
//
//   shopcqrs-bench place --url http://127.0.0.1:8080 -c 8 -d 20 [--rate R] [--json FILE]
//   shopcqrs-bench pay   --url http://127.0.0.1:8080 -c 8 -d 20 [--orders N] [--json FILE]
//
// Setup seeds customers and products (huge stock) through the HTTP API; `pay` also places the
// orders it will pay. Then the scenario runs closed-loop (default) or open-loop (--rate) for a
// warm-up and a measured window, and the result is printed as a table and written as JSON.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <random>
#include <string>
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
  std::string url = "http://127.0.0.1:8080";
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

json::object LatencyJson(const LatencyHistogram& h) {
  return {{"count", h.count()},
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

// Builds PlaceOrder requests: a random customer, three distinct random products, quantity 1.
class PlaceRequests {
 public:
  PlaceRequests(const Seeded& seeded, int clients) : seeded_(seeded) {
    for (int c = 0; c < clients; ++c) {
      rngs_.emplace_back(std::random_device{}() ^ (static_cast<std::uint64_t>(c) << 32));
    }
  }

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

int Run(const Options& options) {
  const auto endpoint = ParseUrl(options.url);
  if (!endpoint) throw std::runtime_error("--url must look like http://HOST:PORT");

  // Wait for the service.
  {
    HttpClient probe(endpoint->host, endpoint->port, std::chrono::milliseconds(2000));
    HttpRequest healthz;
    healthz.method = "GET";
    healthz.target = "/healthz";
    const auto deadline = Clock::now() + std::chrono::seconds(30);
    while (!probe.Send(healthz).ok()) {
      if (Clock::now() > deadline)
        throw std::runtime_error("service not healthy at " + options.url);
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  }

  const std::string tag = RunTag();
  const auto setup_start = Clock::now();
  const Seeded seeded = SeedCatalog(options, *endpoint, tag);
  const LoadOptions load = MeasuredLoad(options, *endpoint);

  LoadResult result;
  ServerMetrics before, after;
  std::string command;
  json::object setup{{"customers", seeded.customers.size()}, {"products", seeded.products.size()}};

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
    before = ScrapeCommandDurations(*endpoint);
    result = RunLoad(load, [&](int, std::uint64_t) -> std::optional<HttpRequest> {
      const auto i = next.fetch_add(1);
      if (i >= orders.size()) return std::nullopt;
      return Post(fmt::format("/v1/orders/{}/pay", orders[i].id),
                  json::object{{"amount_cents", orders[i].total_cents},
                               {"payment_reference", fmt::format("bench-{}-{}", tag, i)}});
    });
    after = ScrapeCommandDurations(*endpoint);
  }

  const auto server = Delta(before, after, command);
  PrintTable(options, result, server, command);

  if (!options.json_file.empty()) {
    json::object statuses;
    for (const auto& [status, count] : result.statuses) {
      statuses[status == 0 ? std::string("transport_error") : std::to_string(status)] = count;
    }
    json::array per_second;
    for (auto n : result.ok_per_second) per_second.push_back(n);
    json::object out{
        {"scenario", options.scenario},
        {"url", options.url},
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
        {"setup", std::move(setup)},
    };
    if (server) {
      out["server"] = json::object{{"command", command},
                                   {"count", server->count},
                                   {"mean_ms", server->mean_ms},
                                   {"p50_ms", server->p50_ms},
                                   {"p99_ms", server->p99_ms}};
    }
    std::ofstream file(options.json_file, std::ios::trunc);
    file << json::serialize(out) << '\n';
    if (!file) throw std::runtime_error("cannot write " + options.json_file);
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
    command->add_option("--url", options.url, "base URL of the service")->capture_default_str();
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
  add_common(pay);
  pay->add_option("--orders", options.orders, "orders to place in setup (0 = time-based)")
      ->capture_default_str();
  pay->add_option("--setup-factor", options.setup_factor,
                  "with --orders 0: place orders for FACTOR x (warm-up + duration) seconds")
      ->capture_default_str();
  CLI11_PARSE(cli, argc, argv);
  options.scenario = *place ? "place" : "pay";
  try {
    return shopcqrs::bench::Run(options);
  } catch (const std::exception& error) {
    std::cerr << "shopcqrs-bench: " << error.what() << std::endl;
    return 1;
  }
}
