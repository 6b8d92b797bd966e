#pragma once

// The real command side (PgWriteStore + CommandService, system clock and ids) on a write
// database, for integration tests.

#include <string>

#include "adapters/pg_write/write_store.h"
#include "adapters/system/system.h"
#include "application/command_service.h"
#include "cqrs/consistency_token.h"
#include "infra/pg/pool.h"

namespace shopcqrs::test_support {

struct CommandSide {
  explicit CommandSide(const std::string& write, int connections = 8)
      : pool(adapters::pg_write::WritePoolOptions(write, connections)),
        store(pool, tokens),
        commands(store, clock, ids) {}

  cqrs::ConsistencyTokens tokens;
  adapters::system::SystemClock clock;
  adapters::system::RandomIds ids;
  infra::pg::Pool pool;
  adapters::pg_write::PgWriteStore store;
  app::CommandService commands;
};

}  // namespace shopcqrs::test_support
