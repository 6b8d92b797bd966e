#pragma once

#include <string>
#include <string_view>

#include "adapters/pg_read/read_model.h"
#include "application/read_model.h"
#include "infra/pg/pool.h"

namespace shopcqrs::adapters::pg_single {

// Single-database mode (query_source = "write"): the query port answered by normalized joins
// and aggregates on the WRITE database, with exactly the answers of pg_read::PgReadModel for
// the same data (same order, same paging, same cursors). The honest baseline for the
// benchmarks of the separated read database, and a migration path for an installation that
// does not run a read database yet. Every statement is read-only.

// Pool options for queries on the write database: UTC session, read-only transactions,
// statements prepared on every connection. Use a pool of its own, never the command pool.
infra::pg::Pool::Options SinglePoolOptions(std::string conninfo, int size);

const pg_read::QueryStatements& SingleStatements();

// pg_read's query model over the write database's joins.
class PgSingleReadModel final : public pg_read::PgReadModel {
 public:
  explicit PgSingleReadModel(infra::pg::Pool& pool) : PgReadModel(pool, SingleStatements()) {}
};

}  // namespace shopcqrs::adapters::pg_single
