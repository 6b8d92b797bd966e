#pragma once

#include <functional>
#include <string>
#include <vector>

#include "adapters/http/admin_routes.h"
#include "adapters/pg_outbox/outbox_reader.h"
#include "apps/shopcqrs/config.h"
#include "cqrs/projector.h"

// The projections of an installation, defined once: what `/v1/admin/projections` lists for a
// process that does not run them, and what `shopcqrs status` prints.
namespace shopcqrs::apps {

struct CatalogueEntry {
  std::string name;   // "read_pg", "search", "redis"
  std::string store;  // where it writes: "read_pg" (the read PostgreSQL) or "redis"
  // Reads the stored checkpoint from the store (opens a connection of its own).
  std::function<cqrs::Checkpoint()> load_checkpoint;
};

// read_pg and search always; redis when the configuration names a Redis.
std::vector<CatalogueEntry> ProjectionCatalogue(const apps::Config& config);

// What the admin API and `status` say about a projection whose checkpoint is `checkpoint`:
// position and events behind (counted on the write database's outbox).
adapters::http::ProjectionInfo Describe(std::string name, std::string store,
                                        const cqrs::Checkpoint& checkpoint,
                                        adapters::pg_outbox::OutboxReader& monitor);

// `shopcqrs status`: each projection's position, what it still has to apply, and what holds
// the outbox readers back. Exit code 3 while any projection is behind.
int Status(const apps::Config& config);

}  // namespace shopcqrs::apps
