#pragma once

// Small SQL helpers for integration tests (each opens a connection of its own).

#include <libpq-fe.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "infra/pg/connection.h"
#include "infra/pg/migrator.h"
#include "support/test_postgres.h"

namespace shopcqrs::test_support {

// The plan of `statement` in session `c` (EXPLAIN, its lines joined): for a prepared statement
// (`EXECUTE name(...)`) the plan that session has cached.
inline std::string Plan(infra::pg::Connection& c, const std::string& statement) {
  const auto plan = c.Exec("EXPLAIN " + statement);
  std::string text;
  for (int i = 0; i < plan.rows(); ++i) text += plan.String(i, 0) + "\n";
  return text;
}

// The first column of the first row, as an integer.
inline std::int64_t Scalar(const std::string& conninfo, const std::string& sql) {
  infra::pg::Connection c(conninfo);
  return c.Exec(sql).Int64(0, 0);
}

// The first column of every row.
inline std::vector<std::string> Column(const std::string& conninfo, const std::string& sql) {
  infra::pg::Connection c(conninfo);
  auto result = c.Exec(sql);
  std::vector<std::string> values;
  for (int i = 0; i < result.rows(); ++i) values.push_back(result.String(i, 0));
  return values;
}

// Every row of `sql`, columns joined with '|' (NULL as "∅"), timestamps in UTC.
inline std::vector<std::string> Dump(const std::string& conninfo, const std::string& sql) {
  infra::pg::Connection c(conninfo);
  c.Exec("SET TimeZone = 'UTC'");
  std::unique_ptr<PGresult, decltype(&PQclear)> r(PQexec(c.raw(), sql.c_str()), &PQclear);
  EXPECT_EQ(PQresultStatus(r.get()), PGRES_TUPLES_OK) << PQresultErrorMessage(r.get());
  std::vector<std::string> rows;
  for (int i = 0; i < PQntuples(r.get()); ++i) {
    std::string row;
    for (int j = 0; j < PQnfields(r.get()); ++j) {
      if (j) row += '|';
      row += PQgetisnull(r.get(), i, j) ? "∅" : PQgetvalue(r.get(), i, j);
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

// Whether a connection to `conninfo` can be opened right now.
inline bool Connects(const std::string& conninfo) {
  std::unique_ptr<PGconn, decltype(&PQfinish)> conn(PQconnectdb(conninfo.c_str()), &PQfinish);
  return PQstatus(conn.get()) == CONNECTION_OK;
}

// The write server's commit bound now (with its epoch, cqrs/commit_bound.h): every transaction
// committed so far has an xid below it.
inline std::uint64_t WriteBound(const std::string& write) {
  return static_cast<std::uint64_t>(Scalar(write, "SELECT shopcqrs_commit_bound()"));
}

// A fresh database with the migrations of `store` ("pg_write" or "pg_read") applied.
inline std::string MigratedDatabase(const std::string& hint, const char* store) {
  auto conninfo = FreshDatabase(hint);
  infra::pg::ApplyMigrations(conninfo, store);
  return conninfo;
}

// Writes the backlog of a catch-up test into the outbox, set-based, on `c`'s session: temp
// table ids (n, id) of 40,000 fresh uuids; CustomerRegistered of n 1..2000, ProductAdded of n
// 2001..2200 and, for each of the 37,800 others, an order of 2 units of one product (10
// cents) placed, paid and shipped (tracking number T<n>), in that order of events.
inline void InsertCatchUpBacklog(infra::pg::Connection& c) {
  c.Exec(
      "CREATE TEMP TABLE ids AS SELECT g AS n, gen_random_uuid() AS id FROM "
      "generate_series(1, 40000) g;"
      "INSERT INTO outbox (event_id, event_type, schema_version, aggregate_type, aggregate_id, "
      "aggregate_version, occurred_at, payload) "
      "SELECT gen_random_uuid(), 'CustomerRegistered', 1, 'Customer', id, 1, now(), "
      "json_build_object('customer_id', id, 'name', 'N' || n, 'email', n || '@x') "
      "FROM ids WHERE n <= 2000;"
      "INSERT INTO outbox (event_id, event_type, schema_version, aggregate_type, aggregate_id, "
      "aggregate_version, occurred_at, payload) "
      "SELECT gen_random_uuid(), 'ProductAdded', 1, 'Product', id, 1, now(), "
      "json_build_object('product_id', id, 'sku', 'S' || n, 'name', 'P' || n, 'price_cents', 5, "
      "'stock', 1000000) FROM ids WHERE n > 2000 AND n <= 2200;"
      "CREATE TEMP TABLE o AS SELECT i.n, i.id, c.id AS customer_id, p.id AS product_id "
      "FROM ids i JOIN ids c ON c.n = 1 + i.n % 2000 JOIN ids p ON p.n = 2001 + i.n % 200 "
      "WHERE i.n > 2200;"
      "INSERT INTO outbox (event_id, event_type, schema_version, aggregate_type, aggregate_id, "
      "aggregate_version, occurred_at, payload) "
      "SELECT gen_random_uuid(), e.type, 1, 'Order', o.id, e.v, now(), "
      "json_build_object('order_id', o.id, 'customer_id', o.customer_id, 'total_cents', 10, "
      "'amount_cents', 10, 'payment_reference', 'R', 'tracking_number', 'T' || o.n, "
      "'lines', json_build_array(json_build_object('product_id', o.product_id, 'sku', "
      "'SKU' || o.n % 200, 'product_name', 'Product ' || o.n % 200, 'quantity', 2, "
      "'unit_price_cents', 5))) "
      "FROM o CROSS JOIN (VALUES ('OrderPlaced', 1), ('OrderPaid', 2), ('OrderShipped', 3)) "
      "AS e (type, v) ORDER BY e.v, o.id");
}

// A fresh write database and a fresh read database, both migrated.
struct Databases {
  std::string write = MigratedDatabase("w", "pg_write");
  std::string read = MigratedDatabase("r", "pg_read");
};

}  // namespace shopcqrs::test_support
