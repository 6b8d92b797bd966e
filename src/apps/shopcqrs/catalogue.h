#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "adapters/http/admin_routes.h"
#include "adapters/pg_outbox/outbox_reader.h"
#include "apps/shopcqrs/config.h"
#include "cqrs/projector.h"

// The projections of an installation, defined once: what `shopcqrs status` prints.
namespace shopcqrs::apps {

struct CatalogueEntry {
  std::string name;   // "read_pg", "search", "redis"
  std::string store;  // where it writes: "read_pg" (the read PostgreSQL) or "redis"
  // Reads the stored checkpoint from the store (opens a connection of its own).
  std::function<cqrs::Checkpoint()> load_checkpoint;
  // The parked aggregates in the store (dead letters).
  std::function<std::vector<cqrs::DeadLetter>()> load_dead_letters;
};

// read_pg and search always; redis when the configuration names a Redis.
std::vector<CatalogueEntry> ProjectionCatalogue(const apps::Config& config);

// Counts the events after a checkpoint that its reader has not applied (the outbox's committed
// events after it, or a durable consumer's unacknowledged messages); throws when it cannot.
using BacklogCounter = std::function<std::int64_t(const cqrs::Checkpoint&)>;

// What the admin API and `status` say about a projection whose checkpoint is `checkpoint`:
// position and events behind (`backlog`; -1 with the error as last_error when it fails).
adapters::http::ProjectionInfo Describe(std::string name, std::string store,
                                        const cqrs::Checkpoint& checkpoint,
                                        const BacklogCounter& backlog);

// `shopcqrs status`: each projection's position, what it still has to apply, its parked events
// (dead letters), and what holds the outbox readers back. Exit code 3 while any projection is
// behind or has parked events.
int Status(const apps::Config& config);

}  // namespace shopcqrs::apps
