// shopcqrs-bench-catchup: how fast the read_pg projection catches up with a backlog.
//
//   shopcqrs-bench-catchup [--events N] [--batch B] [--fsync] [--dir DIR] [--json FILE]
//
// Starts its own write and read PostgreSQL servers (in a fresh temporary directory), applies
// the migrations, fills the write database's outbox with N realistic events (customers,
// products, orders placed/paid/shipped/cancelled in per-aggregate version order, written by
// server-side SQL in many transactions), then measures:
//   fetch    the outbox reader alone (OutboxReader::FetchBatch to the end, rows parsed)
//   copy     COPY of the same rows into a flat table on the read server (one transaction)
//   project  the real OutboxReader + PgReadProjection + Projector into the empty read
//            database, until the projector's bound reaches the write database's bound
// and prints a table with rates and ratios, also written as JSON (default
// bench/results/catchup-latest.json).
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>
#include <boost/json.hpp>

#include "adapters/pg_outbox/outbox_reader.h"
#include "adapters/pg_read/projection.h"
#include "cqrs/commit_bound.h"
#include "cqrs/projector.h"
#include "devstack/postgres_server.h"
#include "infra/pg/connection.h"
#include "infra/pg/migrator.h"

#include "bench_support.h"

namespace shopcqrs::bench {
namespace {

namespace json = boost::json;
namespace fs = std::filesystem;
using infra::pg::Connection;
using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

std::int64_t Scalar(const std::string& conninfo, const std::string& sql) {
  Connection c(conninfo);
  return c.Exec(sql).Int64(0, 0);
}

struct Shape {
  std::int64_t customers = 0;
  std::int64_t products = 0;
  std::int64_t orders = 0;
};

// Per 10 orders (by n % 10): 0-4 placed, paid, shipped; 5-6 placed, paid; 7 placed, paid,
// cancelled (refunded); 8 placed; 9 placed, cancelled: 25 events.
Shape ShapeFor(std::int64_t events) {
  Shape s;
  s.customers = std::max<std::int64_t>(10, events / 50);
  s.products = std::max<std::int64_t>(10, events / 1000);
  s.orders = std::max<std::int64_t>(10, (events - s.customers - s.products) * 10 / 25);
  return s;
}

// Fills the outbox with server-side SQL. Ids are md5-derived uuids of a number, so payloads
// can name customers and products without joins. Orders go in blocks: transaction t holds
// the OrderPlaced events of block t, the OrderPaid of block t-1 and the
// OrderShipped/OrderCancelled of block t-2, so every aggregate's versions are in commit order
// and the log interleaves aggregates like a live system.
void Generate(const std::string& write, const Shape& s, std::int64_t block) {
  Connection c(write);
  c.Exec("SET synchronous_commit = off");
  const auto base = "timestamptz '2026-01-01 00:00:00+00'";
  c.Exec(fmt::format(
      "INSERT INTO outbox (event_id, event_type, schema_version, aggregate_type, aggregate_id, "
      "aggregate_version, occurred_at, payload) "
      "SELECT gen_random_uuid(), 'CustomerRegistered', 1, 'Customer', md5('c' || n)::uuid, 1, "
      "{0} + n * interval '1 second', json_build_object('customer_id', md5('c' || n)::uuid, "
      "'name', (ARRAY['Ada','Grace','Alan','Edsger','Barbara','Donald','Ken','Linus'])[1 + n % 8]"
      " || ' ' || (ARRAY['Lovelace','Hopper','Turing','Dijkstra','Liskov','Knuth','Thompson',"
      "'Torvalds','Ritchie'])[1 + n % 9] || ' ' || n, 'email', 'customer' || n || '@example.com')"
      " FROM generate_series(1, {1}) n",
      base, s.customers));
  c.Exec(fmt::format(
      "INSERT INTO outbox (event_id, event_type, schema_version, aggregate_type, aggregate_id, "
      "aggregate_version, occurred_at, payload) "
      "SELECT gen_random_uuid(), 'ProductAdded', 1, 'Product', md5('p' || n)::uuid, 1, "
      "{0} + n * interval '1 second', json_build_object('product_id', md5('p' || n)::uuid, "
      "'sku', 'SKU-' || lpad(n::text, 6, '0'), 'name', (ARRAY['Red','Blue','Green','Large',"
      "'Small','Organic','Vintage'])[1 + n % 7] || ' ' || (ARRAY['Mug','Lamp','Chair','Kettle',"
      "'Desk','Scarf','Book','Plant','Clock','Backpack'])[1 + n % 10] || ' ' || n, "
      "'price_cents', 100 + n % 900, 'stock', 1000000000) FROM generate_series(1, {1}) n",
      base, s.products));
  // The orders' fixed parts: customer, lines (1-3 distinct products) and total.
  c.Exec(fmt::format(
      "CREATE UNLOGGED TABLE bench_orders AS SELECT n, md5('o' || n)::uuid AS id, "
      "md5('c' || (1 + (n * 7919) % {0}))::uuid AS customer_id, l.lines, l.total "
      "FROM generate_series(1, {2}) n, LATERAL (SELECT json_agg(json_build_object("
      "'product_id', md5('p' || pk)::uuid, 'sku', 'SKU-' || lpad(pk::text, 6, '0'), "
      "'product_name', (ARRAY['Red','Blue','Green','Large','Small','Organic','Vintage'])"
      "[1 + pk % 7] || ' ' || (ARRAY['Mug','Lamp','Chair','Kettle','Desk','Scarf','Book',"
      "'Plant','Clock','Backpack'])[1 + pk % 10] || ' ' || pk, 'quantity', q, "
      "'unit_price_cents', 100 + pk % 900)) AS lines, sum(q * (100 + pk % 900)) AS total "
      "FROM (SELECT 1 + ((n * 31 + k * 977) % {1}) AS pk, 1 + (n + k) % 3 AS q "
      "FROM generate_series(1, 1 + (n % 3)::int) k) x) l; "
      "CREATE INDEX ON bench_orders (n)",
      s.customers, s.products, s.orders));
  const std::int64_t blocks = (s.orders + block - 1) / block;
  auto range = [&](std::int64_t b) {
    return fmt::format("o.n > {} AND o.n <= {}", b * block, (b + 1) * block);
  };
  const auto insert =
      "INSERT INTO outbox (event_id, event_type, schema_version, aggregate_type, aggregate_id, "
      "aggregate_version, occurred_at, payload) ";
  for (std::int64_t t = 0; t < blocks + 2; ++t) {
    std::string sql = "BEGIN;";
    if (t < blocks) {
      sql += fmt::format(
          "{0} SELECT gen_random_uuid(), 'OrderPlaced', 1, 'Order', o.id, 1, "
          "{1} + o.n * interval '2 second', json_build_object('order_id', o.id, 'customer_id', "
          "o.customer_id, 'lines', o.lines, 'total_cents', o.total) FROM bench_orders o "
          "WHERE {2} ORDER BY o.n;",
          insert, base, range(t));
    }
    if (t >= 1 && t - 1 < blocks) {
      sql += fmt::format(
          "{0} SELECT gen_random_uuid(), 'OrderPaid', 1, 'Order', o.id, 2, "
          "{1} + o.n * interval '2 second' + interval '5 minutes', json_build_object("
          "'order_id', o.id, 'customer_id', o.customer_id, 'amount_cents', o.total, "
          "'payment_reference', 'PAY-' || o.n, 'lines', o.lines) FROM bench_orders o "
          "WHERE {2} AND o.n % 10 < 8 ORDER BY o.n;",
          insert, base, range(t - 1));
    }
    if (t >= 2) {
      sql += fmt::format(
          "{0} SELECT gen_random_uuid(), CASE WHEN o.n % 10 < 5 THEN 'OrderShipped' "
          "ELSE 'OrderCancelled' END, 1, 'Order', o.id, CASE WHEN o.n % 10 = 9 THEN 2 ELSE 3 "
          "END, {1} + o.n * interval '2 second' + interval '1 day', CASE WHEN o.n % 10 < 5 "
          "THEN json_build_object('order_id', o.id, 'customer_id', o.customer_id, "
          "'tracking_number', 'TRK' || lpad(o.n::text, 10, '0')) "
          "ELSE json_build_object('order_id', o.id, 'customer_id', o.customer_id, 'reason', "
          "CASE WHEN o.n % 10 = 7 THEN 'changed my mind' ELSE '' END, 'refunded_cents', "
          "CASE WHEN o.n % 10 = 7 THEN o.total ELSE 0 END, 'previous_status', "
          "CASE WHEN o.n % 10 = 7 THEN 'paid' ELSE 'placed' END, 'lines', o.lines) END "
          "FROM bench_orders o WHERE {2} AND o.n % 10 IN (0, 1, 2, 3, 4, 7, 9) ORDER BY o.n;",
          insert, base, range(t - 2));
    }
    sql += "COMMIT";
    c.Exec(sql);
  }
  c.Exec("DROP TABLE bench_orders");
  c.Exec("VACUUM ANALYZE outbox");
}

struct Phase {
  std::string name;
  std::int64_t events = 0;
  double seconds = 0;
  double Rate() const { return seconds > 0 ? static_cast<double>(events) / seconds : 0; }
};

// The outbox reader alone; answers the events as COPY text lines for the copy baseline.
Phase Fetch(const std::string& write, std::size_t batch_size, std::string& copy_text) {
  const auto t0 = Clock::now();
  adapters::pg_outbox::OutboxReader reader({write});
  cqrs::Checkpoint at;
  std::int64_t n = 0;
  double parse_seconds = 0;
  while (true) {
    auto batch = reader.FetchBatch(at, batch_size);
    if (batch.events.empty()) break;
    n += static_cast<std::int64_t>(batch.events.size());
    at = batch.next;
    // Not timed: building the COPY input.
    const auto p0 = Clock::now();
    for (const auto& e : batch.events) {
      const auto& v = e.envelope;
      copy_text += fmt::format("{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t", e.position, e.xid, v.event_id,
                               v.type, v.aggregate_type, v.aggregate_id, v.aggregate_version,
                               v.occurred_at.time_since_epoch().count());
      for (char ch : v.payload) {  // COPY text escaping
        if (ch == '\\') {
          copy_text += "\\\\";
        } else if (ch == '\t') {
          copy_text += "\\t";
        } else if (ch == '\n') {
          copy_text += "\\n";
        } else {
          copy_text.push_back(ch);
        }
      }
      copy_text.push_back('\n');
    }
    parse_seconds += Seconds(p0);
  }
  return {"fetch (OutboxReader)", n, Seconds(t0) - parse_seconds};
}

Phase Copy(const std::string& read, const std::string& text, std::int64_t events) {
  Connection c(read);
  c.Exec(
      "CREATE TABLE bench_flat (position bigint PRIMARY KEY, xid bigint, event_id uuid, "
      "event_type text, aggregate_type text, aggregate_id uuid, aggregate_version bigint, "
      "occurred_ms bigint, payload jsonb)");
  const auto t0 = Clock::now();
  c.Exec("BEGIN");
  auto* conn = c.raw();
  PQclear(PQexec(conn, "COPY bench_flat FROM STDIN"));
  const std::size_t chunk = 1 << 20;
  for (std::size_t at = 0; at < text.size(); at += chunk) {
    const auto len = std::min(chunk, text.size() - at);
    if (PQputCopyData(conn, text.data() + at, static_cast<int>(len)) != 1) {
      throw std::runtime_error(PQerrorMessage(conn));
    }
  }
  if (PQputCopyEnd(conn, nullptr) != 1) throw std::runtime_error(PQerrorMessage(conn));
  while (PGresult* r = PQgetResult(conn)) {
    const bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    std::string error = PQresultErrorMessage(r);
    PQclear(r);
    if (!ok) throw std::runtime_error("COPY failed: " + error);
  }
  c.Exec("COMMIT");
  Phase phase{"copy into flat table (read server)", events, Seconds(t0)};
  c.Exec("DROP TABLE bench_flat");
  c.Exec("CHECKPOINT");
  return phase;
}

// Counts progress reports (one per applied batch or moved bound).
class CountingObserver final : public cqrs::ProjectorObserver {
 public:
  void OnProgress(std::string_view, const cqrs::Checkpoint&) override { ++progress_; }
  std::int64_t progress() const { return progress_; }

 private:
  std::int64_t progress_ = 0;
};

int Run(int argc, char** argv) {
  std::int64_t events = 1'000'000;
  std::size_t batch = cqrs::Projector::Options{}.batch_size;
  std::int64_t block = 20'000;
  bool fsync = false;
  bool keep = false;
  std::string dir;
  std::string json_file = std::string(SHOPCQRS_BENCH_RESULTS_DIR) + "/catchup-latest.json";
  CLI::App cli{"shopcqrs-bench-catchup: projection catch-up speed"};
  cli.add_option("--events", events, "events in the backlog")->check(CLI::Range(100, 50'000'000));
  cli.add_option("--batch", batch, "the projector's batch_size (its default if omitted)")
      ->check(CLI::Range(1, 1'000'000));
  std::size_t max_batch = adapters::pg_read::kCatchUpMaxBatch;
  cli.add_option("--max-batch", max_batch,
                 "the projector's max_batch_size (default: what the service uses for read_pg)")
      ->check(CLI::Range(1, 10'000'000));
  cli.add_option("--block", block, "orders per generating transaction")
      ->check(CLI::Range(1, 10'000'000));
  cli.add_flag("--fsync", fsync, "run the servers with fsync on (default: off, like the tests)");
  cli.add_option("--dir", dir, "data directory (default: a fresh temporary one, removed)");
  cli.add_flag("--keep", keep, "keep the data directory");
  cli.add_option("--json", json_file, "where to write the JSON result");
  bool statements = false;
  cli.add_flag("--statements", statements,
               "load pg_stat_statements on the read server and print what the projection's "
               "statements cost");
  CLI11_PARSE(cli, argc, argv);
  spdlog::set_level(spdlog::level::warn);

  bool remove = false;
  if (dir.empty()) {
    dir = MakeTempDir("shopcqrs-catchup-");
    remove = !keep;
  }
  std::cout << "data in " << dir << "\n";

  std::vector<std::pair<std::string, std::string>> settings = {{"max_wal_size", "4GB"},
                                                               {"shared_buffers", "256MB"}};
  if (statements) {
    settings.emplace_back("shared_preload_libraries", "pg_stat_statements");
    settings.emplace_back("pg_stat_statements.track", "all");
  }
  BenchServers servers(dir, fsync, settings);
  const auto& write = servers.write;
  const auto read = servers.read_server.ConnectionString();
  infra::pg::ApplyMigrations(read, "pg_read");

  const auto shape = ShapeFor(events);
  auto t0 = Clock::now();
  Generate(write, shape, block);
  const double generate_seconds = Seconds(t0);
  const auto total = Scalar(write, "SELECT count(*) FROM outbox");
  const auto transactions = Scalar(write, "SELECT count(DISTINCT xid) FROM outbox");
  // Bounds carry the write server's epoch (cqrs/commit_bound.h).
  const auto bound = cqrs::ComposeBound(
      static_cast<std::uint64_t>(Scalar(write, "SELECT shopcqrs_write_epoch()::text::bigint")),
      static_cast<std::uint64_t>(Scalar(write, "SELECT pg_current_xact_id()::text::bigint")));
  fmt::print(
      "generated {} events ({} customers, {} products, {} orders) in {} transactions, "
      "{:.1f} s\n",
      total, shape.customers, shape.products, shape.orders, transactions, generate_seconds);

  std::string copy_text;
  copy_text.reserve(static_cast<std::size_t>(total) * 400);
  const auto fetch = Fetch(write, batch, copy_text);
  const auto copy = Copy(read, copy_text, total);
  std::string().swap(copy_text);

  cqrs::Projector::Options options;
  options.name = "read_pg";
  options.batch_size = batch;
  options.max_batch_size = max_batch;
  adapters::pg_outbox::OutboxReader reader({write});
  adapters::pg_read::PgReadProjection store(read);
  cqrs::ProgressTracker tracker;
  CountingObserver observer;
  cqrs::Projector projector(options, reader, store, &tracker, &observer);
  if (statements) {
    Connection c(read);
    c.Exec("CREATE EXTENSION IF NOT EXISTS pg_stat_statements");
    c.Exec("SELECT pg_stat_statements_reset()");
  }
  fmt::print("projecting (bench pid {})\n", ::getpid());
  std::fflush(stdout);
  t0 = Clock::now();
  projector.Start();
  while (!tracker.WaitFor(bound, std::chrono::seconds(600))) {
    const auto stats = projector.Stats();
    if (stats.status == cqrs::ProjectorStatus::kError) {
      throw std::runtime_error("projector failed: " + stats.last_error);
    }
  }
  // Built from zero, the projection creates the secondary indexes of order_views once caught up
  // (PgReadProjection::CaughtUp): part of the catch-up.
  const auto indexes_left = [&] {
    return Scalar(read, "SELECT count(*) FROM projection_deferred_indexes");
  };
  for (auto until = Clock::now() + std::chrono::seconds(600); indexes_left() > 0;) {
    if (Clock::now() > until) throw std::runtime_error("deferred indexes never created");
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  const Phase project{"project (reader + read_pg + projector)", total, Seconds(t0)};
  const auto stats = projector.Stats();
  projector.Stop();
  if (static_cast<std::int64_t>(stats.events_applied) != total) {
    throw std::runtime_error(fmt::format("applied {} events of {}", stats.events_applied, total));
  }
  const auto order_views = Scalar(read, "SELECT count(*) FROM order_views");
  const auto stored_events =
      Scalar(read, "SELECT events FROM projection_checkpoints WHERE name = 'read_pg'");
  const auto indexes =
      Scalar(read, "SELECT count(*) FROM pg_indexes WHERE tablename = 'order_views'");
  if (indexes != 4) throw std::runtime_error(fmt::format("order_views has {} indexes", indexes));
  if (order_views != shape.orders || stored_events != total) {
    throw std::runtime_error(fmt::format("read model incomplete: {} order views of {}, {} events",
                                         order_views, shape.orders, stored_events));
  }

  if (statements) {
    Connection c(read);
    auto r = c.Exec(
        "SELECT round(total_exec_time::numeric / 1000, 2), calls, rows, "
        "left(regexp_replace(query, '\\s+', ' ', 'g'), 90) FROM pg_stat_statements "
        "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) "
        "ORDER BY total_exec_time DESC LIMIT 12");
    fmt::print("\nread server statements (s, calls, rows, statement):\n");
    for (int i = 0; i < r.rows(); ++i) {
      fmt::print("{:>8} {:>6} {:>8}  {}\n", r.String(i, 0), r.String(i, 1), r.String(i, 2),
                 r.String(i, 3));
    }
  }
  fmt::print("\n{:<42} {:>10} {:>9} {:>12} {:>12}\n", "phase", "events", "seconds", "events/s",
             "project/x");
  for (const auto* p : {&fetch, &copy, &project}) {
    fmt::print("{:<42} {:>10} {:>9.2f} {:>12.0f} {:>12.3f}\n", p->name, p->events, p->seconds,
               p->Rate(), project.Rate() / p->Rate());
  }
  fmt::print("\nbatches {} (batch_size {}), {:.0f} events/batch; target 50000 events/s: {}\n",
             stats.batches, batch,
             stats.batches ? static_cast<double>(total) / static_cast<double>(stats.batches) : 0.0,
             project.Rate() >= 50'000 ? "met" : "MISSED");

#ifndef SHOPCQRS_BENCH_BASELINE
  const auto timings = store.GetTimings();
  fmt::print(
      "apply phases (s): decode {:.2f}  load {:.2f}  apply {:.2f}  encode {:.2f}  write {:.2f}  "
      "(sum {:.2f} of {:.2f})\n",
      timings.decode, timings.load, timings.apply, timings.encode, timings.write,
      timings.decode + timings.load + timings.apply + timings.encode + timings.write,
      project.seconds);
#endif
  json::object result{
      {"benchmark", "catchup"},
      {"events", total},
      {"customers", shape.customers},
      {"products", shape.products},
      {"orders", shape.orders},
      {"write_transactions", transactions},
      {"batch_size", batch},
      {"batches", stats.batches},
      {"fsync", fsync},
      {"generate_seconds", generate_seconds},
      {"cores", std::thread::hardware_concurrency()},
  };
  json::array phases;
  for (const auto* p : {&fetch, &copy, &project}) {
    phases.push_back(json::object{{"name", p->name},
                                  {"events", p->events},
                                  {"seconds", p->seconds},
                                  {"events_per_second", p->Rate()},
                                  {"project_ratio", project.Rate() / p->Rate()}});
  }
  result["phases"] = std::move(phases);
#ifndef SHOPCQRS_BENCH_BASELINE
  result["apply_phase_seconds"] = json::object{{"decode", timings.decode},
                                               {"load", timings.load},
                                               {"apply", timings.apply},
                                               {"encode", timings.encode},
                                               {"write", timings.write}};
#endif
  result["project_events_per_second"] = project.Rate();
  result["target_events_per_second"] = 50'000;
  result["project_vs_fetch"] = project.Rate() / fetch.Rate();
  result["project_vs_copy"] = project.Rate() / copy.Rate();
  WriteJson(json_file, result);

  servers.Stop();
  if (remove) fs::remove_all(dir);
  return 0;
}

}  // namespace
}  // namespace shopcqrs::bench

int main(int argc, char** argv) {
  return shopcqrs::bench::Main("shopcqrs-bench-catchup", argc, argv, shopcqrs::bench::Run);
}
