#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "cqrs/projector.h"
#include "infra/pg/connection.h"
#include "infra/pg/pgoutput.h"
#include "infra/pg/replication_stream.h"

// The outbox read by logical decoding: a logical replication slot with PostgreSQL's built-in
// `pgoutput` plugin streams the outbox's inserts, transaction by transaction in commit order,
// as each commits -- no snapshot bound, so no wait for the oldest open transaction on the server
// (an idle-in-transaction session anywhere stalls the snapshot OutboxReader, not this one).
//
// Checkpoint mapping (cqrs::Checkpoint, whose fields were named for the snapshot reader):
//   xid      = the commit LSN of the event's transaction (the per-transaction ordering key: LSNs
//              of commit records follow commit order);
//   position = the event's outbox position (the order inside its transaction);
//   bound    = an LSN through which everything is delivered: every transaction whose commit
//              record lies before it has been delivered. It is the end LSN of the last
//              delivered transaction's commit, or, when no transaction is pending, the WAL
//              position of the server's latest keepalive (so an idle source still advances).
// StoredEvent::xid likewise carries the commit LSN; committed_at is the commit time.
// These values are NOT comparable with the snapshot reader's (xid, epoch-composed bound):
// a store cannot switch readers without a conversion (see the report of this change), and the
// bounds are no consistency tokens of the command side (those are xid-based).
//
// Delivery: a batch holds complete transactions only (one larger than `max` comes whole). The
// server resends everything after the slot's confirmed_flush_lsn on every new session, which
// Acknowledge advances to the applied bound (WAL before it is released); events with
// (commit LSN, position) <= the checkpoint, or in a transaction committed before its bound, are
// skipped, so a restart delivers exactly what was not applied.
//
// One slot per consumer: the slot remembers one consumer's progress. A checkpoint behind the
// slot's confirmed_flush_lsn (a store that lost what it had acknowledged) cannot be served from
// the slot and is reported (CheckpointBehindSlot), as is a lost slot (ReplicationSlotLost).
// Recovering those from the retained outbox (the snapshot reader up to the slot, then the slot)
// is not built yet.
namespace shopcqrs::adapters::pg_outbox {

inline constexpr const char* kLogicalSlot = "shopcqrs_outbox";
inline constexpr const char* kPublication = "shopcqrs_outbox";

struct LogicalOutboxNames {
  std::string slot = kLogicalSlot;         // [a-z_][a-z0-9_]*, at most 63 characters
  std::string publication = kPublication;  // likewise
};

// The write server cannot decode logically (wal_level is not `logical`, no replication slots
// allowed), or the slot or publication is not set up (or set up differently). No retry cures it.
class LogicalDecodingUnavailable : public cqrs::FatalProjectionError {
 public:
  using cqrs::FatalProjectionError::FatalProjectionError;
};

// The slot is gone (dropped) or invalidated (pg_replication_slots.wal_status = 'lost': the server
// removed WAL it still needed, e.g. past max_slot_wal_keep_size). Events after its last
// confirmed position can no longer be streamed; they must be re-read from the outbox.
class ReplicationSlotLost : public cqrs::FatalProjectionError {
 public:
  using cqrs::FatalProjectionError::FatalProjectionError;
};

// The checkpoint asked for lies before the slot's confirmed_flush_lsn (or beyond the server's
// WAL: not a logical-reader checkpoint at all): the slot cannot deliver what lies between.
class CheckpointBehindSlot : public cqrs::FatalProjectionError {
 public:
  using cqrs::FatalProjectionError::FatalProjectionError;
};

// Creates, unless they exist, the publication (`CREATE PUBLICATION <publication> FOR TABLE outbox
// WITH (publish = 'insert')`) and then the slot (pg_create_logical_replication_slot(<slot>,
// 'pgoutput')) in the write database of `conninfo`, for the migrate step (after the pg_write
// migrations). Idempotent, safe against a concurrent run. Throws LogicalDecodingUnavailable when
// the server cannot decode logically or a slot of that name is of another plugin or database.
// Creating a slot waits until every transaction that holds an xid on the server has ended.
// Answers whether it created anything.
bool EnsureLogicalOutbox(const std::string& conninfo, const LogicalOutboxNames& names = {});
// Drops the slot (it must not be in use) and the publication, if they exist.
void DropLogicalOutbox(const std::string& conninfo, const LogicalOutboxNames& names = {});

// A slot as pg_replication_slots shows it, for metrics.
struct SlotStatus {
  bool exists = false;
  bool active = false;     // a session streams from it
  std::string wal_status;  // reserved, extended, unreserved or lost
  std::optional<infra::pg::Lsn> restart_lsn;
  std::optional<infra::pg::Lsn> confirmed_flush_lsn;
  // pg_current_wal_lsn() - restart_lsn: the WAL the slot keeps from being removed.
  std::int64_t retained_wal_bytes = 0;
  // pg_current_wal_lsn() - confirmed_flush_lsn: WAL written since the consumer's last confirm.
  std::int64_t confirmed_lag_bytes = 0;
};

class LogicalOutboxReader final : public cqrs::EventSource {
 public:
  struct Options {
    std::string conninfo;  // the write database (an ordinary conninfo)
    LogicalOutboxNames names;
    // Standby status updates at least this often while reading.
    std::chrono::milliseconds status_interval{10'000};
  };
  explicit LogicalOutboxReader(Options options);
  ~LogicalOutboxReader() override;

  // Starts (or restarts) streaming when there is no session or `after` is not where the last
  // batch ended. Throws LogicalDecodingUnavailable, ReplicationSlotLost, CheckpointBehindSlot
  // (all cqrs::FatalProjectionError), infra::pg::ConnectionLost.
  cqrs::EventBatch FetchBatch(const cqrs::Checkpoint& after, std::size_t max) override;
  // Reads the stream until a transaction is complete or the bound moved (true), or `timeout`.
  bool WaitForChange(std::chrono::milliseconds timeout) override;
  // Confirms applied.bound as flushed: the slot's confirmed_flush_lsn moves there.
  void Acknowledge(const cqrs::Checkpoint& applied) override;
  void Reset() override;

  // The slot, read on a connection of its own. Throws infra::pg::ConnectionLost.
  SlotStatus Slot();
  // The LSN confirmed to the server so far (0 before streaming).
  infra::pg::Lsn Confirmed();

 private:
  struct Transaction {
    infra::pg::Lsn commit_lsn = 0;
    infra::pg::Lsn end_lsn = 0;
    cqrs::TimePoint committed_at{};
    std::vector<cqrs::StoredEvent> events;
  };
  // Column indexes of the outbox in a Relation message.
  struct OutboxColumns {
    int position = -1, event_id = -1, event_type = -1, schema_version = -1, aggregate_type = -1,
        aggregate_id = -1, aggregate_version = -1, occurred_at = -1, payload = -1;
  };

  // mutex_ held for all of these.
  void Open(const cqrs::Checkpoint& after);
  void Drop();
  // Reads messages until `timeout` passes without one, `max` events are complete (at a commit),
  // or (stop_at_change) a transaction completed or the bound moved.
  void Pump(std::chrono::milliseconds timeout, std::size_t max, bool stop_at_change);
  void Handle(const infra::pg::StreamMessage& message);
  cqrs::StoredEvent DecodeRow(const OutboxColumns& columns, const infra::pg::pgoutput::Tuple& row);
  bool Changed() const;
  // Rethrows a stream fault, as ReplicationSlotLost when the slot is gone or lost.
  [[noreturn]] void Fault(std::exception_ptr error);

  Options options_;
  std::mutex mutex_;
  std::unique_ptr<infra::pg::ReplicationStream> stream_;
  std::unordered_map<std::uint32_t, infra::pg::pgoutput::Relation> relations_;
  std::unordered_map<std::uint32_t, OutboxColumns> outbox_columns_;  // relations that are outbox
  std::optional<Transaction> open_;                                  // between Begin and Commit
  std::deque<Transaction> ready_;                                    // committed, not delivered
  std::size_t ready_events_ = 0;
  infra::pg::Lsn idle_bound_ = 0;  // keepalive WAL positions seen outside transactions
  cqrs::Checkpoint delivered_;     // where the last batch ended (or streaming started)

  std::mutex sql_mutex_;
  infra::pg::ReconnectingConnection sql_;
};

}  // namespace shopcqrs::adapters::pg_outbox
