#include "infra/pg/migrator.h"

#include <set>

#include <spdlog/spdlog.h>

#include "infra/pg/connection.h"
#include "infra/pg/embedded_migrations.h"

namespace shopcqrs::infra::pg {

namespace {
// Two-int advisory lock keys live apart from the one-bigint keys used for aggregates.
constexpr const char* kLockSql = "SELECT pg_advisory_lock(1397247824, 1)";
constexpr const char* kUnlockSql = "SELECT pg_advisory_unlock(1397247824, 1)";
}  // namespace

int ApplyMigrations(const std::string& conninfo, std::string_view store) {
  Connection connection(conninfo);
  connection.Exec("SET client_min_messages = warning");
  connection.Exec(kLockSql);
  int applied = 0;
  try {
    connection.Exec(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version integer PRIMARY KEY, name text NOT NULL,"
        " applied_at timestamptz NOT NULL DEFAULT now())");
    std::set<int> done;
    auto rows = connection.Exec("SELECT version FROM schema_migrations");
    for (int i = 0; i < rows.rows(); ++i) done.insert(static_cast<int>(rows.Int64(i, 0)));

    for (const auto& migration : AllEmbeddedMigrations()) {
      if (migration.store != store || done.contains(migration.number)) continue;
      spdlog::info("{}: applying migration {:04d}_{}", store, migration.number, migration.name);
      connection.Exec("BEGIN");
      try {
        connection.Exec(migration.sql);
        Params params;
        params.Add(migration.number).Add(migration.name);
        connection.Exec("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", params);
        connection.Exec("COMMIT");
      } catch (...) {
        connection.Exec("ROLLBACK");
        throw;
      }
      ++applied;
    }
  } catch (...) {
    connection.Exec(kUnlockSql);
    throw;
  }
  connection.Exec(kUnlockSql);
  return applied;
}

}  // namespace shopcqrs::infra::pg
