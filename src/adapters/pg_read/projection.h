#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "adapters/pg_read/projection_support.h"

namespace shopcqrs::adapters::pg_read {

inline constexpr const char* kProjectionName = "read_pg";
// NOTIFYed on the read database after every checkpoint commit of a read-database projection
// (read_pg, search); payload "<name>:<bound>".
inline constexpr const char* kProgressChannel = "shopcqrs_progress";

// The largest batch the read_pg projector grows to while catching up (Projector::Options::
// max_batch_size): every batch rewrites each customer it touches and each order whose events it
// holds, so larger batches write fewer row versions (measured on 500,000 events: 16,000-event
// batches 36 s, 64,000 27 s). Memory grows with it (the batch and its prefetched successor).
inline constexpr std::size_t kCatchUpMaxBatch = 65'536;

// The "read_pg" projection: order, customer, product and daily-sales views in the read
// PostgreSQL database. Each Apply is one transaction (projection_support::BatchProjection): lock
// the checkpoint row, load the rows the batch touches, apply the events in memory (skipping
// events whose aggregate version is not above the stored one; a version gap throws
// cqrs::DeterministicApplyError), write the rows back set-based, store the checkpoint, NOTIFY,
// COMMIT -- two round trips per batch, one when the rows it touches are cached from earlier
// batches or new (the usual live batch). Uses its own connection, reopened after a fault. Order
// search is a projection of its own (SearchProjection, search_projection.h).
//
// Built from zero (the first batch starts at the zero checkpoint and holds at least
// kBuildFromZeroEvents): that batch drops the secondary indexes of order_views (their definitions
// kept in projection_deferred_indexes, migration 0005), so the catch-up writes its row versions
// without maintaining them; CaughtUp creates them again (also those a crashed process left).
// Queries of order_views scan it meanwhile.
class PgReadProjection final : public projection_support::BatchProjection {
 public:
  explicit PgReadProjection(std::string conninfo, std::string name = kProjectionName);

  void Apply(const cqrs::Checkpoint& from, const std::vector<cqrs::StoredEvent>& events,
             const cqrs::Checkpoint& to) override;
  void CaughtUp() override;

 private:
  std::string name_;
  projection_support::ProjectorConnection maintenance_;  // for CaughtUp, closed after use
  bool check_deferred_ = true;  // deferred indexes may exist (at start, after a build)
};

inline constexpr std::size_t kBuildFromZeroEvents = 1000;

}  // namespace shopcqrs::adapters::pg_read
