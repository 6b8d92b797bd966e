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

}  // namespace shopcqrs::test_support
