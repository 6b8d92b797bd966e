#include "apps/shopcqrs/catalogue.h"

#include <iostream>

#include <fmt/format.h>

#include "adapters/pg_read/projection.h"
#include "adapters/pg_read/search_projection.h"
#include "adapters/redis/redis_projection.h"
#include "cqrs/commit_bound.h"

namespace shopcqrs::apps {

std::vector<CatalogueEntry> ProjectionCatalogue(const apps::Config& config) {
  std::vector<CatalogueEntry> entries;
  entries.push_back({adapters::pg_read::kProjectionName, "read_pg",
                     [read = config.read_db] {
                       return adapters::pg_read::PgReadProjection(read).LoadCheckpoint();
                     },
                     [read = config.read_db] {
                       return adapters::pg_read::PgReadProjection(read).LoadDeadLetters();
                     }});
  entries.push_back({adapters::pg_read::kSearchProjectionName, "read_pg",
                     [read = config.read_db] {
                       return adapters::pg_read::SearchProjection(read).LoadCheckpoint();
                     },
                     [read = config.read_db] {
                       return adapters::pg_read::SearchProjection(read).LoadDeadLetters();
                     }});
  if (!config.redis.empty()) {
    const auto address = apps::ParseListenAddress(config.redis);
    if (address) {
      infra::redis::RedisEndpoint endpoint{.host = address->host, .port = address->port};
      entries.push_back(
          {adapters::redis::kProjectionName, "redis",
           [endpoint] {
             return adapters::redis::RedisProjection({.endpoint = endpoint}).LoadCheckpoint();
           },
           [endpoint] {
             return adapters::redis::RedisProjection({.endpoint = endpoint}).LoadDeadLetters();
           }});
    }
  }
  return entries;
}

adapters::http::ProjectionInfo Describe(std::string name, std::string store,
                                        const cqrs::Checkpoint& checkpoint,
                                        const BacklogCounter& backlog) {
  adapters::http::ProjectionInfo info;
  info.name = std::move(name);
  info.store = std::move(store);
  info.position = checkpoint.position;
  try {
    info.events_behind = backlog(checkpoint);
  } catch (const std::exception& error) {
    info.events_behind = -1;
    info.last_error = error.what();
  }
  return info;
}

int Status(const apps::Config& config) {
  adapters::pg_outbox::OutboxReader monitor({config.write_db});
  std::cout << fmt::format("{:<12} {:<10} {:>12} {:>14} {:>13} {:>20}\n", "projection", "store",
                           "position", "events_behind", "dead_letters", "bound (epoch.xid)");
  bool behind = false;
  for (const auto& entry : ProjectionCatalogue(config)) {
    try {
      const auto checkpoint = entry.load_checkpoint();
      const auto info =
          Describe(entry.name, entry.store, checkpoint,
                   [&monitor](const cqrs::Checkpoint& c) { return monitor.CountAfter(c); });
      std::int64_t parked = 0;
      for (const auto& letter : entry.load_dead_letters()) parked += letter.events;
      std::cout << fmt::format("{:<12} {:<10} {:>12} {:>14} {:>13} {:>20}\n", info.name, info.store,
                               info.position, info.events_behind, parked,
                               fmt::format("{}.{}", cqrs::BoundEpoch(checkpoint.bound),
                                           cqrs::BoundXid(checkpoint.bound)));
      behind = behind || info.events_behind != 0 || parked != 0;
    } catch (const std::exception& error) {
      std::cout << entry.name << ": " << error.what() << "\n";
      behind = true;
    }
  }
  if (auto blocking = monitor.OldestBlockingTransaction()) {
    std::cout << fmt::format(
        "oldest transaction holding an xid on the write server: xid {} (pid {}, {}, {}), open "
        "{} ms\n",
        blocking->xid, blocking->pid, blocking->database, blocking->state, blocking->age.count());
  }
  return behind ? 3 : 0;
}

}  // namespace shopcqrs::apps
