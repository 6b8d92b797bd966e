#include "adapters/pg_outbox/outbox_reader.h"

#include <algorithm>
#include <charconv>
#include <stdexcept>

#include "cqrs/commit_bound.h"

namespace shopcqrs::adapters::pg_outbox {

namespace {

// The statements of this adapter (read-only, on the write database).
//
// One statement: the snapshot bound and the scan share one snapshot. Rows of transactions
// below pg_snapshot_xmin can no longer appear or change, so walking them in (xid, position)
// order from the checkpoint is complete. The lateral join yields the bound even with no rows.
// Served by outbox_xid_position_idx (row comparison as index condition).
constexpr infra::pg::Statement kFetch{
    "outbox_fetch",
    "SELECT s.xmin::text, o.position, o.xid::text, o.event_id::text, o.event_type, "
    "o.schema_version, o.aggregate_type, o.aggregate_id::text, o.aggregate_version, "
    "(extract(epoch FROM o.occurred_at) * 1000)::bigint, o.payload::text "
    "FROM (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin) s "
    "LEFT JOIN LATERAL (SELECT * FROM outbox "
    "  WHERE (outbox.xid, outbox.position) > ($1::xid8, $2::bigint) AND outbox.xid < s.xmin "
    "  ORDER BY outbox.xid, outbox.position LIMIT $3) o ON true "
    "ORDER BY o.xid, o.position"};

constexpr infra::pg::Statement kOldestBlocking{
    "outbox_oldest_blocking",
    "SELECT backend_xid::text, "
    "(extract(epoch FROM now() - coalesce(xact_start, now())) * 1000)::bigint, pid, "
    "coalesce(datname, ''), coalesce(state, '') FROM pg_stat_activity "
    "WHERE backend_xid IS NOT NULL ORDER BY age(backend_xid) DESC LIMIT 1"};

// Committed events after a checkpoint (served by the same index as the fetch).
constexpr infra::pg::Statement kCountAfter{
    "outbox_count_after",
    "SELECT count(*) FROM outbox WHERE (xid, position) > ($1::xid8, $2::bigint)"};

std::uint64_t ParseU64(std::string_view text) {
  std::uint64_t value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || ptr != text.data() + text.size()) {
    throw std::runtime_error("not an xid8: " + std::string(text));
  }
  return value;
}

}  // namespace

OutboxReader::OutboxReader(Options options)
    : options_(std::move(options)),
      connection_({.conninfo = options_.conninfo,
                   // Prepared once per session, maybe on an empty outbox: its generic plans
                   // must stay on outbox_xid_position_idx as the retained log grows (no
                   // sequential scan; no JIT for the price of a disabled one).
                   .session = {.application_name = "shopcqrs-outbox-reader",
                               .settings = {{"enable_seqscan", "off"}, {"jit", "off"}}},
                   .statements = {kFetch, kOldestBlocking, kCountAfter},
                   .listen = {kOutboxChannel},
                   .on_connect = [this](infra::pg::Connection& connection) {
                     // The epoch of the write server's current start: a session cannot
                     // outlive it.
                     epoch_ = ParseU64(connection.Exec("SELECT shopcqrs_write_epoch()").Text(0, 0));
                   }}) {}

OutboxReader::~OutboxReader() = default;

infra::pg::Connection& OutboxReader::Connected() { return connection_.Get(); }

void OutboxReader::Reset() {
  std::lock_guard lock(mutex_);
  connection_.Reset();
}

cqrs::EventBatch OutboxReader::FetchBatch(const cqrs::Checkpoint& after, std::size_t max) {
  std::lock_guard lock(mutex_);
  auto& connection = Connected();
  // Notifications that arrived so far are answered by this fetch; later ones stay queued.
  try {
    connection.WaitForNotifications(std::chrono::milliseconds(0));
  } catch (const infra::pg::ConnectionLost&) {
    connection_.Reset();
    throw;
  }
  notified_ = false;

  infra::pg::Result rows;
  try {
    rows = connection.ExecPrepared(kFetch, infra::pg::Params()
                                               .Add(std::to_string(after.xid))
                                               .Add(after.position)
                                               .Add(static_cast<std::int64_t>(max)));
  } catch (const infra::pg::ConnectionLost&) {
    connection_.Reset();
    throw;
  }

  cqrs::EventBatch batch;
  batch.next = after;
  if (rows.rows() == 0) throw std::runtime_error("outbox fetch answered no row");
  const std::uint64_t xmin = ParseU64(rows.Text(0, 0));
  if (!rows.IsNull(0, 1)) {
    batch.events.reserve(rows.rows());
    for (int i = 0; i < rows.rows(); ++i) {
      cqrs::StoredEvent event;
      event.position = rows.Int64(i, 1);
      event.xid = ParseU64(rows.Text(i, 2));
      auto& e = event.envelope;
      e.event_id = rows.String(i, 3);
      e.type = rows.String(i, 4);
      e.schema_version = static_cast<int>(rows.Int64(i, 5));
      e.aggregate_type = rows.String(i, 6);
      e.aggregate_id = rows.String(i, 7);
      e.aggregate_version = rows.Int64(i, 8);
      e.occurred_at = cqrs::TimePoint(std::chrono::milliseconds(rows.Int64(i, 9)));
      e.payload = rows.String(i, 10);
      event.committed_at = e.occurred_at;
      batch.events.push_back(std::move(event));
    }
    batch.next.xid = batch.events.back().xid;
    batch.next.position = batch.events.back().position;
  }
  // Cut by LIMIT: everything below the last row's xid has been read (rows of that xid may
  // follow). Otherwise everything below the snapshot xmin has been read.
  const std::uint64_t bound =
      cqrs::ComposeBound(epoch_, batch.events.size() >= max ? batch.next.xid : xmin);
  batch.next.bound = std::max(after.bound, bound);
  return batch;
}

bool OutboxReader::WaitForChange(std::chrono::milliseconds timeout) {
  std::lock_guard lock(mutex_);
  auto& connection = Connected();
  if (notified_) return true;
  try {
    notified_ = !connection.WaitForNotifications(std::min(timeout, options_.poll_interval)).empty();
  } catch (const infra::pg::ConnectionLost&) {
    connection_.Reset();
    throw;
  }
  return notified_;
}

std::optional<BlockingTransaction> OutboxReader::OldestBlockingTransaction() {
  std::lock_guard lock(mutex_);
  auto& connection = Connected();
  infra::pg::Result rows;
  try {
    rows = connection.ExecPrepared(kOldestBlocking, {});
  } catch (const infra::pg::ConnectionLost&) {
    connection_.Reset();
    throw;
  }
  DrainNotifications(connection);
  if (rows.rows() == 0) return std::nullopt;
  BlockingTransaction t;
  t.xid = ParseU64(rows.Text(0, 0));
  t.age = std::chrono::milliseconds(rows.Int64(0, 1));
  t.pid = static_cast<int>(rows.Int64(0, 2));
  t.database = rows.String(0, 3);
  t.state = rows.String(0, 4);
  return t;
}

// Notifications that arrive while other statements run are buffered by libpq; an instance used
// only for monitoring would otherwise collect them forever.
void OutboxReader::DrainNotifications(infra::pg::Connection& connection) {
  if (!connection.WaitForNotifications(std::chrono::milliseconds(0)).empty()) notified_ = true;
}

std::int64_t OutboxReader::CountAfter(const cqrs::Checkpoint& after) {
  std::lock_guard lock(mutex_);
  auto& connection = Connected();
  try {
    infra::pg::Params params;
    params.Add(std::to_string(after.xid)).Add(after.position);
    const auto count = connection.ExecPrepared(kCountAfter, params).Int64(0, 0);
    DrainNotifications(connection);
    return count;
  } catch (const infra::pg::ConnectionLost&) {
    connection_.Reset();
    throw;
  }
}

}  // namespace shopcqrs::adapters::pg_outbox
