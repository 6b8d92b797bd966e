// shopcqrs-bench-lag: how soon a command's effect is visible in the read database.
//
//   shopcqrs-bench-lag [--rates 100,500,1000] [--duration D] [--threads T] [--fsync]
//                      [--sources outbox,broker,broker-r3] [--json FILE] [--park]
//
// Starts its own write and read PostgreSQL servers (and, for the broker path, a nats-server),
// seeds customers and products, then per source runs the read_pg projector in-process into a
// read database of its own:
//   outbox  the real OutboxReader + PgReadProjection + Projector (direct path);
//   broker  the relay (outbox -> JetStream) + JetStreamSource (durable consumer) +
//           PgReadProjection + Projector (the path `shopcqrs up` runs), on one nats-server
//           (the stream at R1);
//   broker-r3  the same on a three-node JetStream cluster on loopback (devstack::NatsCluster),
//           the stream at replicas = 3 (the path of `shopcqrs up --nats-cluster 3`).
// For each broker source it first measures the append latency alone: 2,000 appends one after
// the other to a scratch stream with the source's replicas, each waited for (publish -> the
// stream's ack, which on R3 means stored by a quorum of two nodes).
// For each rate it drives app::CommandService + PgWriteStore open loop (command i is due at start +
// i/R, spread over T threads) with a mix of 50% PlaceOrder, 30% PayOrder (of a placed order) and
// 20% RegisterCustomer, for a 1 s warm-up plus D seconds. Per rate it reports:
//   command  due time -> command returned (coordinated-omission corrected)
//   visible  command returned -> the ProgressTracker reached the bound in the command's
//            consistency token (what a client waiting on its token observes; 0 when the
//            projection got there first)
//   server   event committed_at (its occurred_at, ms precision, taken before the commit) ->
//            applied, from the projector's observer
// as p50/p99/p99.9/max in milliseconds; printed and written as JSON (default
// bench/results/lag-latest.json). --park: each projection runs with one parked aggregate (a
// poison event written before the measurement), to compare with a run without.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>
#include <boost/json.hpp>

#include "adapters/nats/jetstream_source.h"
#include "adapters/pg_outbox/outbox_reader.h"
#include "adapters/pg_read/projection.h"
#include "adapters/pg_write/write_store.h"
#include "adapters/relay/relay.h"
#include "adapters/system/system.h"
#include "application/command_service.h"
#include "cqrs/consistency_token.h"
#include "cqrs/projector.h"
#include "devstack/nats_cluster.h"
#include "devstack/nats_server.h"
#include "devstack/postgres_server.h"
#include "infra/nats/jetstream.h"
#include "infra/pg/connection.h"
#include "infra/pg/migrator.h"
#include "infra/pg/pool.h"

#include "bench_support.h"

namespace shopcqrs::bench {
namespace {

namespace json = boost::json;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using Ms = std::chrono::duration<double, std::milli>;

struct Percentiles {
  std::size_t count = 0;
  double p50 = 0, p99 = 0, p999 = 0, max = 0, mean = 0;
};

Percentiles Summarize(std::vector<double> v) {
  Percentiles p;
  p.count = v.size();
  if (v.empty()) return p;
  std::sort(v.begin(), v.end());
  auto at = [&](double q) {
    const auto i = static_cast<std::size_t>(q * static_cast<double>(v.size() - 1) + 0.5);
    return v[std::min(i, v.size() - 1)];
  };
  p.p50 = at(0.50);
  p.p99 = at(0.99);
  p.p999 = at(0.999);
  p.max = v.back();
  double sum = 0;
  for (double x : v) sum += x;
  p.mean = sum / static_cast<double>(v.size());
  return p;
}

json::object ToJson(const Percentiles& p) {
  return {{"count", p.count},  {"p50_ms", p.p50}, {"p99_ms", p.p99},
          {"p999_ms", p.p999}, {"max_ms", p.max}, {"mean_ms", p.mean}};
}

// Server-side lag of every applied event while `recording`.
class LagObserver final : public cqrs::ProjectorObserver {
 public:
  void OnEventApplied(std::string_view, const cqrs::StoredEvent&,
                      std::chrono::duration<double> lag) override {
    if (!recording) return;
    std::lock_guard lock(mutex_);
    lags_.push_back(lag.count() * 1000.0);
  }
  void OnProgress(std::string_view, const cqrs::Checkpoint&) override { ++batches; }
  std::vector<double> Take() {
    std::lock_guard lock(mutex_);
    return std::exchange(lags_, {});
  }
  std::atomic<bool> recording = false;
  std::atomic<std::int64_t> batches = 0;

 private:
  std::mutex mutex_;
  std::vector<double> lags_;
};

// When the tracker's bound moved, as a monotonic timeline.
class BoundTimeline {
 public:
  explicit BoundTimeline(cqrs::ProgressTracker& tracker) : tracker_(tracker) {
    thread_ = std::thread([this] { Run(); });
  }
  ~BoundTimeline() {
    stop_ = true;
    thread_.join();
  }
  // The first time the bound was >= `bound`, if it was.
  std::optional<Clock::time_point> Reached(std::uint64_t bound) {
    std::lock_guard lock(mutex_);
    auto it = std::lower_bound(points_.begin(), points_.end(), bound,
                               [](const auto& p, std::uint64_t b) { return p.second < b; });
    if (it == points_.end()) return std::nullopt;
    return it->first;
  }

 private:
  void Run() {
    while (!stop_) {
      const auto current = tracker_.Bound();
      if (tracker_.WaitFor(current + 1, std::chrono::milliseconds(50))) {
        const auto now = Clock::now();
        std::lock_guard lock(mutex_);
        points_.emplace_back(now, tracker_.Bound());
      }
    }
  }
  cqrs::ProgressTracker& tracker_;
  std::atomic<bool> stop_ = false;
  std::mutex mutex_;
  std::vector<std::pair<Clock::time_point, std::uint64_t>> points_;
  std::thread thread_;
};

struct PlacedOrder {
  domain::OrderId id;
  std::int64_t total_cents = 0;
};

struct RateResult {
  std::string source;
  double rate = 0;
  double achieved = 0;
  std::int64_t commands = 0;
  std::int64_t failures = 0;
  std::int64_t batches = 0;
  Percentiles command, visible, server;
};

// Synchronous appends, one at a time, to a scratch stream of `replicas` on `url`: publish ->
// ack latency in ms.
Percentiles MeasureAppends(const std::string& url, int replicas, int count) {
  infra::nats::JetStreamConnection nats({.url = url, .name = "bench-append"});
  const std::string stream = fmt::format("BENCH_APPEND_R{}", replicas);
  nats.EnsureStream({.name = stream,
                     .subjects = {fmt::format("bench.append.r{}", replicas)},
                     .description = "shopcqrs-bench-lag append latency",
                     .replicas = replicas});
  const std::string subject = fmt::format("bench.append.r{}", replicas);
  const std::string payload(400, 'x');  // about an event's size
  std::vector<double> ms;
  ms.reserve(count);
  for (int i = 0; i < count + 100; ++i) {
    const auto start = Clock::now();
    jsPubAck* ack = nullptr;
    jsErrCode code = static_cast<jsErrCode>(0);
    const natsStatus status = js_Publish(&ack, nats.js(), subject.c_str(), payload.data(),
                                         static_cast<int>(payload.size()), nullptr, &code);
    jsPubAck_Destroy(ack);
    infra::nats::Check(status, "js_Publish " + stream, code);
    if (i >= 100) ms.push_back(Ms(Clock::now() - start).count());  // 100 warm-up appends
  }
  js_DeleteStream(nats.js(), stream.c_str(), nullptr, nullptr);
  return Summarize(std::move(ms));
}

int Run(int argc, char** argv) {
  std::string rates_text = "100,500,1000";
  double duration = 10;
  int threads = 16;
  int read_nice = 0;
  bool fsync = false;
  std::string sources_text = "outbox,broker";
  std::string json_file = std::string(SHOPCQRS_BENCH_RESULTS_DIR) + "/lag-latest.json";
  int stat_statements = 0;
  bool keep = false;
  int linger_us = -1;
  bool park = false;
  std::string timeline_file;
  CLI::App cli{"shopcqrs-bench-lag: command -> visible in the read database"};
  cli.add_option("--rates", rates_text, "commands/s, comma-separated");
  cli.add_option("--duration", duration, "measured seconds per rate")->check(CLI::PositiveNumber);
  cli.add_option("--threads", threads, "client threads (= write pool size)")
      ->check(CLI::Range(1, 256));
  cli.add_flag("--fsync", fsync, "run the servers with fsync on (default: off, like the tests)");
  cli.add_option("--read-nice", read_nice,
                 "niceness added to the read server (default 0; `shopcqrs up` uses 5)")
      ->check(CLI::Range(0, 19));
  cli.add_option("--sources", sources_text,
                 "event paths to measure, comma-separated: outbox (direct), broker (NATS, one "
                 "server, R1), broker-r3 (a three-node JetStream cluster, R3)");
  cli.add_option("--json", json_file, "where to write the JSON result");
  cli.add_option("--stat-statements", stat_statements,
                 "after each rate, print the N statements of each server that took the most "
                 "execution time during it (pg_stat_statements, nested statements included)")
      ->check(CLI::Range(0, 100));
  cli.add_option("--linger-us", linger_us,
                 "the projector's group-commit linger in microseconds (default: the projector's)")
      ->check(CLI::Range(0, 100000));
  cli.add_option("--timeline", timeline_file,
                 "write every measured command as 'source rate due_ms latency_ms kind' (due: ms "
                 "since the measured window began) to this file");
  cli.add_flag("--keep", keep, "keep the servers' data directories and logs");
  cli.add_flag("--park", park,
               "before measuring, write a poison event (a payload no projection decodes) for an "
               "aggregate of its own, so each projection runs with one parked aggregate");
  CLI11_PARSE(cli, argc, argv);
  std::vector<std::string> sources;
  {
    std::stringstream in(sources_text);
    std::string item;
    while (std::getline(in, item, ',')) {
      if (item != "outbox" && item != "broker" && item != "broker-r3") {
        throw std::runtime_error("--sources: '" + item + "' is not outbox, broker or broker-r3");
      }
      sources.push_back(item);
    }
  }
  spdlog::set_level(spdlog::level::warn);
  std::vector<double> rates;
  {
    std::stringstream in(rates_text);
    std::string item;
    while (std::getline(in, item, ',')) rates.push_back(std::stod(item));
  }

  const std::string dir = MakeTempDir("shopcqrs-lag-");
  std::vector<std::pair<std::string, std::string>> settings;
  if (stat_statements > 0) {
    settings = {{"shared_preload_libraries", "pg_stat_statements,auto_explain"},
                {"pg_stat_statements.track", "all"},
                {"auto_explain.log_min_duration", "1ms"},
                {"auto_explain.log_nested_statements", "on"}};
  }
  BenchServers servers(dir, fsync, settings, read_nice);
  const auto& write = servers.write;
  auto& read_server = servers.read_server;
  std::unique_ptr<devstack::NatsServer> nats_server;
  if (std::find(sources.begin(), sources.end(), "broker") != sources.end()) {
    nats_server = std::make_unique<devstack::NatsServer>(
        devstack::NatsServer::Options{.data_dir = fs::path(dir) / "nats", .name = "nats"});
    nats_server->Start();
  }
  std::unique_ptr<devstack::NatsCluster> nats_cluster;
  if (std::find(sources.begin(), sources.end(), "broker-r3") != sources.end()) {
    nats_cluster = std::make_unique<devstack::NatsCluster>(
        devstack::NatsCluster::Options{.data_dir = fs::path(dir) / "nats-cluster", .nodes = 3});
    nats_cluster->Start();
  }
  std::vector<std::pair<std::string, Percentiles>> appends;  // per broker source

  infra::pg::Pool pool(adapters::pg_write::WritePoolOptions(write, threads));
  cqrs::ConsistencyTokens tokens;
  adapters::pg_write::PgWriteStore store(pool, tokens);
  adapters::system::SystemClock clock;
  adapters::system::RandomIds ids;
  app::CommandService commands(store, clock, ids);

  std::vector<domain::CustomerId> customers;
  std::vector<domain::ProductId> products;
  std::atomic<std::int64_t> serial = 0;
  for (int i = 0; i < 200; ++i) {
    auto r = commands.Handle(
        app::RegisterCustomer{fmt::format("Customer {}", i), fmt::format("seed{}@example.com", i)});
    if (!r) throw std::runtime_error("seeding customers failed");
    customers.push_back(*domain::CustomerId::Parse(r->id));
  }
  for (int i = 0; i < 500; ++i) {
    auto r = commands.Handle(app::AddProduct{fmt::format("SKU-{:05}", i),
                                             fmt::format("Product {}", i), 100 + i, 1'000'000'000});
    if (!r) throw std::runtime_error("seeding products failed");
    products.push_back(*domain::ProductId::Parse(r->id));
  }

  std::mutex placed_mutex;
  std::deque<PlacedOrder> placed;
  std::vector<RateResult> results;
  for (const auto& source : sources) {
    // A read database of its own per source, projected from the start of the log.
    std::string database = "read_" + source;
    std::replace(database.begin(), database.end(), '-', '_');
    const auto read = read_server.ConnectionString(database);
    {
      infra::pg::Connection admin(read_server.ConnectionString("postgres"));
      admin.Exec("CREATE DATABASE " + database);
    }
    infra::pg::ApplyMigrations(read, "pg_read");
    std::unique_ptr<adapters::relay::Relay> relay;
    std::unique_ptr<cqrs::EventSource> reader;
    if (source.starts_with("broker")) {
      const bool r3 = source == "broker-r3";
      const std::string url = r3 ? nats_cluster->ServerList() : nats_server->Url();
      const int replicas = r3 ? 3 : 1;
      const auto append = MeasureAppends(url, replicas, 2000);
      fmt::print(
          "{} append (publish -> ack, R{}): p50 {:.2f} ms, p99 {:.2f} ms, p99.9 {:.2f} ms, "
          "max {:.2f} ms, mean {:.2f} ms ({} appends)\n",
          source, replicas, append.p50, append.p99, append.p999, append.max, append.mean,
          append.count);
      appends.emplace_back(source, append);
      adapters::relay::Relay::Options relay_options;
      relay_options.write_db = write;
      relay_options.nats.url = url;
      relay_options.stream_replicas = replicas;
      relay = std::make_unique<adapters::relay::Relay>(relay_options);
      relay->Start();
      adapters::nats::JetStreamSource::Options source_options;
      source_options.nats.url = url;
      source_options.stream_replicas = replicas;
      source_options.consumer = "shopcqrs_read_pg";
      reader = std::make_unique<adapters::nats::JetStreamSource>(source_options);
    } else {
      reader = std::make_unique<adapters::pg_outbox::OutboxReader>(
          adapters::pg_outbox::OutboxReader::Options{.conninfo = write});
    }
    adapters::pg_read::PgReadProjection projection(read);
    cqrs::ProgressTracker tracker;
    LagObserver observer;
    cqrs::Projector::Options options;
    options.name = "read_pg";
    if (linger_us >= 0) options.linger = std::chrono::microseconds(linger_us);
    cqrs::Projector projector(options, *reader, projection, &tracker, &observer);
    projector.Start();
    BoundTimeline timeline(tracker);
    {
      infra::pg::Connection probe(write);
      const auto bound =
          static_cast<std::uint64_t>(probe.Exec("SELECT shopcqrs_commit_bound()").Int64(0, 0));
      if (!tracker.WaitFor(bound, std::chrono::seconds(60))) {
        throw std::runtime_error(source + ": the projection did not catch up with the seed");
      }
    }
    if (park && source == sources.front()) {
      // The log is shared by the sources: one poison row parks one aggregate in each.
      infra::pg::Connection(write).Exec(
          "INSERT INTO outbox (event_id, event_type, schema_version, aggregate_type, "
          "aggregate_id, aggregate_version, occurred_at, payload) VALUES (gen_random_uuid(), "
          "'OrderPlaced', 1, 'Order', gen_random_uuid(), 1, now(), '{}')");
    }
    if (park) {
      const auto deadline = Clock::now() + std::chrono::seconds(30);
      while (projector.DeadLetters().empty()) {
        if (Clock::now() > deadline) throw std::runtime_error(source + ": nothing parked");
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
      fmt::print("{}: {} parked aggregate(s)\n", source, projector.DeadLetters().size());
    }
    for (const double rate : rates) {
      const double warmup = 1.0;
      const auto total = static_cast<std::int64_t>(rate * (warmup + duration));
      std::atomic<std::int64_t> next = 0;
      std::mutex samples_mutex;
      std::vector<double> command_ms;
      std::vector<std::tuple<double, double, std::size_t>> commands_seen;  // (due, latency, kind)
      std::vector<std::pair<Clock::time_point, std::uint64_t>> returned;   // (returned, bound)
      std::atomic<std::int64_t> failures = 0;
      const auto batches0 = observer.batches.load();
      const auto start = Clock::now() + std::chrono::milliseconds(50);
      const auto measure_from = start + std::chrono::duration_cast<Clock::duration>(
                                            std::chrono::duration<double>(warmup));
      auto worker = [&](int t) {
        std::mt19937_64 rng(static_cast<std::uint64_t>(t) * 7919 +
                            static_cast<std::uint64_t>(rate));
        auto pick = [&](std::size_t n) { return static_cast<std::size_t>(rng() % n); };
        while (true) {
          const auto i = next.fetch_add(1);
          if (i >= total) return;
          const auto due =
              start + std::chrono::duration_cast<Clock::duration>(
                          std::chrono::duration<double>(static_cast<double>(i) / rate));
          std::this_thread::sleep_until(due);
          const auto kind = pick(10);
          domain::Result<app::CommandResult> r = std::unexpected(domain::Error{});
          std::optional<PlacedOrder> to_pay;
          if (kind >= 5 && kind < 8) {
            std::lock_guard lock(placed_mutex);
            if (!placed.empty()) {
              to_pay = placed.front();
              placed.pop_front();
            }
          }
          if (kind >= 8) {
            const auto n = serial.fetch_add(1);
            r = commands.Handle(app::RegisterCustomer{fmt::format("Customer n{}", n),
                                                      fmt::format("c{}@example.com", n)});
          } else if (to_pay) {
            r = commands.Handle(app::PayOrder{to_pay->id, to_pay->total_cents,
                                              fmt::format("PAY-{}", i), std::nullopt});
          } else {
            app::PlaceOrder cmd{customers[pick(customers.size())], {}};
            const auto lines = 1 + pick(3);
            for (std::size_t k = 0; k < lines; ++k) {
              cmd.lines.push_back({products[pick(products.size())], 1});
            }
            r = commands.Handle(cmd);
            if (r) {
              std::lock_guard lock(placed_mutex);
              placed.push_back({*domain::OrderId::Parse(r->id), *r->total_cents});
            }
          }
          const auto done = Clock::now();
          if (!r) {
            ++failures;
            continue;
          }
          if (due < measure_from) continue;
          const auto bound = tokens.Decode(r->consistency_token);
          std::lock_guard lock(samples_mutex);
          command_ms.push_back(Ms(done - due).count());
          if (!timeline_file.empty()) {
            commands_seen.emplace_back(Ms(due - measure_from).count(), Ms(done - due).count(),
                                       kind);
          }
          if (bound) returned.emplace_back(done, *bound);
        }
      };
      // The workers run the warm-up too: started only at its end (as before), they met a second
      // of overdue commands at once, and the first ~400 ms of every measured window were that
      // backlog draining (the commands' p99 at 1,000/s was mostly this).
      std::vector<std::unique_ptr<infra::pg::Connection>> stats_sessions;
      if (stat_statements > 0) {
        for (const auto* db : {&write, &read}) {
          stats_sessions.push_back(std::make_unique<infra::pg::Connection>(*db));
          stats_sessions.back()->Exec("CREATE EXTENSION IF NOT EXISTS pg_stat_statements");
        }
      }
      std::vector<std::thread> workers;
      for (int t = 0; t < threads; ++t) workers.emplace_back(worker, t);
      std::this_thread::sleep_until(measure_from);
      for (auto& c : stats_sessions) {
        c->Exec("SELECT pg_stat_statements_reset()");
        c->Exec("SELECT pg_stat_reset_shared('wal')");
      }
      observer.Take();
      observer.recording = true;
      for (auto& w : workers) w.join();
      const auto end = Clock::now();
      // Let the projection catch up with the last commands.
      std::uint64_t max_bound = 0;
      for (const auto& [at, bound] : returned) max_bound = std::max(max_bound, bound);
      tracker.WaitFor(max_bound, std::chrono::seconds(30));
      // The timeline thread records the bound just after waiters wake: let it.
      for (int i = 0; i < 100 && !timeline.Reached(max_bound); ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
      observer.recording = false;
      if (stat_statements > 0) {
        for (const auto& [label, db] : {std::pair{"write", &write}, std::pair{"read", &read}}) {
          infra::pg::Connection c(*db);
          const auto top = c.Exec(fmt::format(
              "SELECT calls, round(total_exec_time::numeric, 1), "
              "round((total_exec_time / calls * 1000)::numeric, 1), "
              "left(regexp_replace(query, '\\s+', ' ', 'g'), 110) FROM pg_stat_statements "
              "ORDER BY total_exec_time DESC LIMIT {}",
              stat_statements));
          const auto wal = c.Exec(
              "SELECT wal_records, wal_bytes, wal_write, wal_sync, wal_buffers_full FROM "
              "pg_stat_wal");
          fmt::print(
              "{} {:.0f}/s {} server WAL: {} records, {} bytes, {} writes, {} syncs, {} "
              "buffers full\n",
              source, rate, label, wal.String(0, 0), wal.String(0, 1), wal.String(0, 2),
              wal.String(0, 3), wal.String(0, 4));
          fmt::print("{} {:.0f}/s {} server: calls, total ms, mean us, statement\n", source, rate,
                     label);
          for (int i = 0; i < top.rows(); ++i) {
            fmt::print("  {:>8} {:>9} {:>8}  {}\n", top.String(i, 0), top.String(i, 1),
                       top.String(i, 2), top.String(i, 3));
          }
        }
      }
      std::vector<double> visible_ms;
      for (const auto& [at, bound] : returned) {
        const auto reached = timeline.Reached(bound);
        if (!reached) {
          visible_ms.push_back(30'000);
          continue;
        }
        visible_ms.push_back(std::max(0.0, Ms(*reached - at).count()));
      }
      if (!timeline_file.empty()) {
        std::ofstream out(timeline_file, std::ios::app);
        for (const auto& [at, latency, kind] : commands_seen) {
          out << source << ' ' << rate << ' ' << at << ' ' << latency << ' '
              << (kind >= 8   ? "register"
                  : kind >= 5 ? "pay"
                              : "place")
              << '\n';
        }
      }
      RateResult result;
      result.source = source;
      result.rate = rate;
      result.commands = static_cast<std::int64_t>(command_ms.size());
      result.achieved = static_cast<double>(result.commands) /
                        std::chrono::duration<double>(end - measure_from).count();
      result.failures = failures;
      result.batches = observer.batches - batches0;
      result.command = Summarize(std::move(command_ms));
      result.visible = Summarize(std::move(visible_ms));
      result.server = Summarize(observer.Take());
      results.push_back(result);
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
    projector.Stop();
    if (relay) relay->Stop();
  }

  fmt::print("\n{:>7} {:>6} {:>8} {:>7} {:>6} | {:>27} | {:>35} | {:>27}\n", "source", "rate",
             "achieved", "batches", "fails", "command p50/p99/max ms",
             "visible p50/p99/p99.9/max ms", "server p50/p99/max ms");
  for (const auto& r : results) {
    fmt::print(
        "{:>7} {:>6.0f} {:>8.0f} {:>7} {:>6} | {:>8.2f} {:>8.2f} {:>9.2f} | {:>8.2f} {:>8.2f} "
        "{:>8.2f} "
        "{:>8.2f} | {:>8.1f} {:>8.1f} {:>9.1f}\n",
        r.source, r.rate, r.achieved, r.batches, r.failures, r.command.p50, r.command.p99,
        r.command.max, r.visible.p50, r.visible.p99, r.visible.p999, r.visible.max, r.server.p50,
        r.server.p99, r.server.max);
  }
  json::array rows;
  for (const auto& r : results) {
    rows.push_back(json::object{{"source", r.source},
                                {"rate", r.rate},
                                {"achieved", r.achieved},
                                {"commands", r.commands},
                                {"failures", r.failures},
                                {"batches", r.batches},
                                {"command", ToJson(r.command)},
                                {"visible", ToJson(r.visible)},
                                {"server", ToJson(r.server)}});
  }
  json::object out{{"benchmark", "lag"},
                   {"duration_seconds", duration},
                   {"threads", threads},
                   {"fsync", fsync},
                   {"cores", std::thread::hardware_concurrency()},
                   {"target", json::object{{"rate", 1000}, {"p50_ms", 1}, {"p99_ms", 5}}},
                   {"rates", std::move(rows)}};
  json::object append_rows;
  for (const auto& [source, p] : appends) append_rows[source] = ToJson(p);
  out["appends"] = std::move(append_rows);
  WriteJson(json_file, out);
  if (nats_server) nats_server->Stop();
  if (nats_cluster) nats_cluster->Stop();
  servers.Stop();
  if (keep) {
    fmt::print("kept the servers' data and logs in {}\n", dir);
  } else {
    fs::remove_all(dir);
  }
  return 0;
}

}  // namespace
}  // namespace shopcqrs::bench

int main(int argc, char** argv) {
  return shopcqrs::bench::Main("shopcqrs-bench-lag", argc, argv, shopcqrs::bench::Run);
}
