#pragma once

#include <string>

#include "adapters/pg_read/projection_support.h"

namespace shopcqrs::adapters::pg_read {

inline constexpr const char* kProjectionName = "read_pg";
// NOTIFYed on the read database after every checkpoint commit of a read-database projection
// (read_pg, search); payload "<name>:<bound>".
inline constexpr const char* kProgressChannel = "shopcqrs_progress";

// The "read_pg" projection: order, customer, product and daily-sales views in the read
// PostgreSQL database. Each Apply is one transaction (projection_support::BatchProjection): lock
// the checkpoint row, load the rows the batch touches, apply the events in memory (skipping
// events whose aggregate version is not above the stored one; a version gap throws
// cqrs::FatalProjectionError), write the rows back set-based, store the checkpoint, NOTIFY,
// COMMIT -- two round trips per batch, one when the rows it touches are cached from earlier
// batches or new (the usual live batch). Uses its own connection, reopened after a fault. Order
// search is a projection of its own (SearchProjection, search_projection.h).
class PgReadProjection final : public projection_support::BatchProjection {
 public:
  explicit PgReadProjection(std::string conninfo, std::string name = kProjectionName);
};

}  // namespace shopcqrs::adapters::pg_read
