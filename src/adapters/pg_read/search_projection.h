#pragma once

#include <string>

#include "adapters/pg_read/projection_support.h"

namespace shopcqrs::adapters::pg_read {

inline constexpr const char* kSearchProjectionName = "search";

// The "search" projection: the full-text order search of GET /v1/search/orders, in the read
// PostgreSQL database (tables search_customers and search_orders, migration 0003), with its
// own checkpoint row in projection_checkpoints, independent of the read_pg projection.
//
// An order's search document is its customer's current name and e-mail, the SKUs and product
// names of its lines (as captured by OrderPlaced) and its tracking number (OrderShipped); a
// customer's new details reach every one of its order documents. Only CustomerRegistered,
// CustomerDetailsChanged, OrderPlaced and OrderShipped change anything; the other events are
// passed over without parsing, reading or writing anything.
//
// Each Apply is one transaction (projection_support::BatchProjection, like PgReadProjection):
// lock the checkpoint row, load the rows the batch touches, apply the events in memory (an event
// whose aggregate version is not above the stored one is a redelivery and skipped; a customer
// version gap, or an order event before its OrderPlaced, throws cqrs::DeterministicApplyError),
// write the rows back set-based (version-guarded upserts; a document that did not change is not
// rewritten), store the checkpoint, NOTIFY kProgressChannel with "search:<bound>"
// (ProgressListener with kSearchProjectionName follows it), COMMIT -- two round trips per
// batch. Uses its own connection, reopened after a fault.
class SearchProjection final : public projection_support::BatchProjection {
 public:
  explicit SearchProjection(std::string conninfo, std::string name = kSearchProjectionName);
};

}  // namespace shopcqrs::adapters::pg_read
