#include "adapters/pg_outbox/logical_reader.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <stdexcept>
#include <string_view>
#include <tuple>
#include <variant>

#include <fmt/format.h>

namespace shopcqrs::adapters::pg_outbox {

namespace {

namespace pgo = infra::pg::pgoutput;
using infra::pg::Lsn;

constexpr infra::pg::Statement kSlotStatus{
    "logical_outbox_slot_status",
    "SELECT coalesce(wal_status, ''), active, restart_lsn::text, confirmed_flush_lsn::text, "
    "coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn), 0)::bigint, "
    "coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn), 0)::bigint "
    "FROM pg_replication_slots WHERE slot_name = $1"};

void CheckNames(const LogicalOutboxNames& names) {
  for (const auto* name : {&names.slot, &names.publication}) {
    if (!infra::pg::IsSimpleIdentifier(*name)) {
      throw std::invalid_argument(
          fmt::format("logical outbox name '{}' is not [a-z_][a-z0-9_]* (at most 63)", *name));
    }
  }
}

std::string WalLevelError(std::string_view wal_level) {
  return fmt::format(
      "logical decoding is not available on the write server: wal_level is '{}', it must be "
      "'logical' (with max_replication_slots > 0 and max_wal_senders > 0; changing it needs a "
      "server restart)",
      wal_level);
}

cqrs::TimePoint FromPgTimestamp(pgo::PgTimestamp micros) {
  // Round to the millisecond, like the snapshot reader's extract(epoch ...) * 1000 cast.
  const std::int64_t ms = (micros >= 0 ? micros + 500 : micros - 500) / 1000;
  return cqrs::TimePoint(std::chrono::milliseconds(ms + pgo::kPgEpochUnixMs));
}

// A timestamptz in the walsender session's ISO DateStyle: "2023-11-14 22:13:20.123456+00"
// (fraction optional, offset +HH[:MM[:SS]]). Milliseconds since 1970, rounded.
cqrs::TimePoint ParseTimestamp(std::string_view text) {
  std::size_t at = 0;
  auto fail = [&]() -> void {
    throw std::runtime_error(fmt::format("outbox occurred_at is not an ISO timestamp: '{}'", text));
  };
  auto number = [&](std::size_t min_digits, std::size_t max_digits) {
    std::size_t end = at;
    while (end < text.size() && end - at < max_digits &&
           std::isdigit(static_cast<unsigned char>(text[end]))) {
      ++end;
    }
    if (end - at < min_digits) fail();
    std::int64_t value = 0;
    std::from_chars(text.data() + at, text.data() + end, value);
    at = end;
    return value;
  };
  auto expect = [&](char c) {
    if (at >= text.size() || text[at] != c) fail();
    ++at;
  };
  const auto year = number(4, 6);
  expect('-');
  const auto month = number(2, 2);
  expect('-');
  const auto day = number(2, 2);
  expect(' ');
  const auto hour = number(2, 2);
  expect(':');
  const auto minute = number(2, 2);
  expect(':');
  const auto second = number(2, 2);
  std::int64_t micros = 0;
  if (at < text.size() && text[at] == '.') {
    ++at;
    const std::size_t start = at;
    micros = number(1, 6);
    for (std::size_t digits = at - start; digits < 6; ++digits) micros *= 10;
  }
  if (at >= text.size() || (text[at] != '+' && text[at] != '-')) fail();
  const int sign = text[at] == '-' ? -1 : 1;
  ++at;
  std::int64_t offset = number(2, 2) * 3600;
  if (at < text.size() && text[at] == ':') {
    ++at;
    offset += number(2, 2) * 60;
    if (at < text.size() && text[at] == ':') {
      ++at;
      offset += number(2, 2);
    }
  }
  if (at != text.size()) fail();
  const std::chrono::year_month_day date{std::chrono::year(static_cast<int>(year)),
                                         std::chrono::month(static_cast<unsigned>(month)),
                                         std::chrono::day(static_cast<unsigned>(day))};
  if (!date.ok() || hour > 23 || minute > 59 || second > 60) fail();
  const std::int64_t seconds = std::chrono::sys_days(date).time_since_epoch().count() * 86400 +
                               hour * 3600 + minute * 60 + second - sign * offset;
  const std::int64_t total_micros = seconds * 1'000'000 + micros;
  const std::int64_t ms = (total_micros >= 0 ? total_micros + 500 : total_micros - 500) / 1000;
  return cqrs::TimePoint(std::chrono::milliseconds(ms));
}

std::int64_t ParseInt(std::string_view text, std::string_view column) {
  std::int64_t value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || ptr != text.data() + text.size()) {
    throw std::runtime_error(fmt::format("outbox {} is not an integer: '{}'", column, text));
  }
  return value;
}

}  // namespace

bool EnsureLogicalOutbox(const std::string& conninfo, const LogicalOutboxNames& names) {
  CheckNames(names);
  infra::pg::Connection c(conninfo, {.application_name = "shopcqrs-migrate"});
  const std::string wal_level = c.Exec("SHOW wal_level").String(0, 0);
  if (wal_level != "logical") throw LogicalDecodingUnavailable(WalLevelError(wal_level));
  bool created = false;

  // The publication first: changes are filtered by the publications as of their time, so the
  // slot must not decode anything before the publication exists.
  infra::pg::Params pub;
  pub.Add(names.publication);
  if (c.Exec("SELECT count(*) FROM pg_publication WHERE pubname = $1", pub).Int64(0, 0) == 0) {
    try {
      c.Exec(fmt::format("CREATE PUBLICATION {} FOR TABLE outbox WITH (publish = 'insert')",
                         c.QuoteIdentifier(names.publication)));
      created = true;
    } catch (const infra::pg::PgError& e) {
      if (e.sqlstate() != "42710") throw;  // duplicate_object: a concurrent run made it
    }
  }
  if (c.Exec("SELECT count(*) FROM pg_publication_tables WHERE pubname = $1 AND "
             "tablename = 'outbox' AND schemaname = current_schema()",
             pub)
          .Int64(0, 0) == 0) {
    throw LogicalDecodingUnavailable(fmt::format(
        "publication '{}' exists but does not publish the outbox table", names.publication));
  }

  infra::pg::Params slot;
  slot.Add(names.slot);
  auto existing = c.Exec(
      "SELECT coalesce(plugin, ''), coalesce(database, ''), current_database(), slot_type "
      "FROM pg_replication_slots WHERE slot_name = $1",
      slot);
  if (existing.rows() == 0) {
    try {
      c.Exec("SELECT pg_create_logical_replication_slot($1, 'pgoutput')", slot);
      created = true;
    } catch (const infra::pg::PgError& e) {
      if (e.sqlstate() == "42710") return created;  // a concurrent run made it
      if (e.sqlstate() == "55000" || e.sqlstate() == "53400") {
        throw LogicalDecodingUnavailable(
            fmt::format("cannot create replication slot '{}': {}", names.slot, e.what()));
      }
      throw;
    }
  } else if (existing.Text(0, 3) != "logical" || existing.Text(0, 0) != "pgoutput" ||
             existing.Text(0, 1) != existing.Text(0, 2)) {
    throw LogicalDecodingUnavailable(fmt::format(
        "replication slot '{}' exists but is a {} slot of plugin '{}' in database '{}' (wanted a "
        "logical pgoutput slot in '{}')",
        names.slot, existing.Text(0, 3), existing.Text(0, 0), existing.Text(0, 1),
        existing.Text(0, 2)));
  }
  return created;
}

void DropLogicalOutbox(const std::string& conninfo, const LogicalOutboxNames& names) {
  CheckNames(names);
  infra::pg::Connection c(conninfo);
  infra::pg::Params slot;
  slot.Add(names.slot);
  c.Exec(
      "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1",
      slot);
  c.Exec("DROP PUBLICATION IF EXISTS " + c.QuoteIdentifier(names.publication));
}

LogicalOutboxReader::LogicalOutboxReader(Options options)
    : options_(std::move(options)),
      sql_({.conninfo = options_.conninfo,
            .session = {.application_name = "shopcqrs-logical-outbox-monitor"},
            .statements = {kSlotStatus}}) {
  CheckNames(options_.names);
}

LogicalOutboxReader::~LogicalOutboxReader() = default;

void LogicalOutboxReader::Drop() {
  stream_.reset();
  relations_.clear();
  outbox_columns_.clear();
  open_.reset();
  ready_.clear();
  ready_events_ = 0;
  idle_bound_ = 0;
}

void LogicalOutboxReader::Reset() {
  std::lock_guard lock(mutex_);
  Drop();
}

void LogicalOutboxReader::Open(const cqrs::Checkpoint& after) {
  Drop();
  auto stream =
      std::make_unique<infra::pg::ReplicationStream>(infra::pg::ReplicationStream::Options{
          .conninfo = options_.conninfo,
          // Text output of timestamptz depends on the walsender session's settings.
          .session = {.application_name = "shopcqrs-logical-outbox",
                      .settings = {{"TimeZone", "UTC"}, {"DateStyle", "ISO"}}},
          .status_interval = options_.status_interval});
  // SQL is allowed on a logical walsender session before streaming starts.
  const auto& names = options_.names;
  auto check = stream->Exec(
      fmt::format("SELECT current_setting('wal_level'), "
                  "EXISTS (SELECT 1 FROM pg_publication WHERE pubname = '{0}'), "
                  "s.slot_name IS NOT NULL, coalesce(s.plugin, ''), coalesce(s.database, ''), "
                  "current_database(), coalesce(s.wal_status, ''), s.confirmed_flush_lsn::text, "
                  "pg_current_wal_lsn()::text "
                  "FROM (SELECT 1) one LEFT JOIN pg_replication_slots s ON s.slot_name = '{1}'",
                  names.publication, names.slot));  // both checked to be simple identifiers
  const std::string wal_level = check.String(0, 0);
  if (wal_level != "logical") throw LogicalDecodingUnavailable(WalLevelError(wal_level));
  if (!check.Bool(0, 2)) {
    throw ReplicationSlotLost(fmt::format(
        "replication slot '{}' does not exist on the write server (never created by migrate, or "
        "dropped): the outbox after its last confirmed position must be re-read from the table",
        names.slot));
  }
  if (check.Text(0, 3) != "pgoutput" || check.Text(0, 4) != check.Text(0, 5)) {
    throw LogicalDecodingUnavailable(fmt::format(
        "replication slot '{}' is of plugin '{}' in database '{}', not pgoutput in '{}'",
        names.slot, check.Text(0, 3), check.Text(0, 4), check.Text(0, 5)));
  }
  if (check.Text(0, 6) == "lost") {
    throw ReplicationSlotLost(fmt::format(
        "replication slot '{}' is invalidated (wal_status 'lost': the server removed WAL it "
        "needed): the outbox after its last confirmed position must be re-read from the table",
        names.slot));
  }
  if (!check.Bool(0, 1)) {
    throw LogicalDecodingUnavailable(
        fmt::format("publication '{}' does not exist on the write server", names.publication));
  }
  const Lsn confirmed = check.IsNull(0, 7) ? 0 : infra::pg::ParseLsn(check.Text(0, 7));
  const Lsn current = infra::pg::ParseLsn(check.Text(0, 8));
  if (after.bound > current) {
    throw CheckpointBehindSlot(fmt::format(
        "checkpoint bound {} lies beyond the write server's WAL ({}): it is not a position of "
        "this server's logical outbox (a snapshot reader's checkpoint?)",
        after.bound, infra::pg::FormatLsn(current)));
  }
  if (after.bound != 0 && after.bound < confirmed) {
    throw CheckpointBehindSlot(fmt::format(
        "checkpoint at {} lies before the confirmed position {} of replication slot '{}': the "
        "events between were acknowledged but are not in the store (did it lose a suffix?); the "
        "slot cannot deliver them again",
        infra::pg::FormatLsn(after.bound), infra::pg::FormatLsn(confirmed), names.slot));
  }
  stream->StartLogical(names.slot, after.bound, std::max(after.bound, confirmed),
                       {{"proto_version", "1"}, {"publication_names", names.publication}});
  stream_ = std::move(stream);
  delivered_ = after;
}

void LogicalOutboxReader::Fault(std::exception_ptr error) {
  Drop();
  try {
    std::rethrow_exception(error);
  } catch (const infra::pg::PgError& e) {
    // The server refused the stream or ended it in an error: tell a lost slot apart.
    std::optional<SlotStatus> slot;
    try {
      slot = Slot();
    } catch (...) {
    }
    if (slot && (!slot->exists || slot->wal_status == "lost")) {
      throw ReplicationSlotLost(fmt::format(
          "replication slot '{}' is {} ({}): the outbox after its last confirmed position must be "
          "re-read from the table",
          options_.names.slot, slot->exists ? "invalidated" : "gone", e.what()));
    }
    throw;
  }
}

bool LogicalOutboxReader::Changed() const {
  return !ready_.empty() || idle_bound_ > delivered_.bound;
}

void LogicalOutboxReader::Pump(std::chrono::milliseconds timeout, std::size_t max,
                               bool stop_at_change) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (!open_ && !ready_.empty() && ready_events_ >= max) return;
    if (stop_at_change && Changed()) return;
    const auto left = std::max(std::chrono::milliseconds(0),
                               std::chrono::duration_cast<std::chrono::milliseconds>(
                                   deadline - std::chrono::steady_clock::now()));
    auto message = stream_->Read(left);
    if (!message) return;
    Handle(*message);
  }
}

void LogicalOutboxReader::Handle(const infra::pg::StreamMessage& message) {
  if (const auto* keepalive = std::get_if<infra::pg::Keepalive>(&message)) {
    // Everything the server decoded before this point has been sent before it.
    if (!open_) idle_bound_ = std::max(idle_bound_, keepalive->wal_end);
    return;
  }
  const auto& data = std::get<infra::pg::XLogData>(message);
  const pgo::Decoded decoded = pgo::Decode(data.payload);
  if (const auto* begin = std::get_if<pgo::Begin>(&decoded)) {
    if (open_) throw std::runtime_error("logical outbox: Begin inside a transaction");
    open_.emplace();
    open_->commit_lsn = begin->final_lsn;
    open_->committed_at = FromPgTimestamp(begin->commit_time);
  } else if (const auto* commit = std::get_if<pgo::Commit>(&decoded)) {
    if (!open_) throw std::runtime_error("logical outbox: Commit outside a transaction");
    Transaction txn = std::move(*open_);
    open_.reset();
    txn.commit_lsn = commit->commit_lsn;
    txn.end_lsn = commit->end_lsn;
    txn.committed_at = FromPgTimestamp(commit->commit_time);
    for (auto& event : txn.events) {
      event.xid = txn.commit_lsn;
      event.committed_at = txn.committed_at;
    }
    std::sort(txn.events.begin(), txn.events.end(),
              [](const auto& a, const auto& b) { return a.position < b.position; });
    if (txn.events.empty()) {
      // Nothing of the outbox: it only moves the bound.
      if (ready_.empty()) {
        idle_bound_ = std::max(idle_bound_, txn.end_lsn);
      } else {
        ready_.back().end_lsn = std::max(ready_.back().end_lsn, txn.end_lsn);
      }
      return;
    }
    ready_events_ += txn.events.size();
    ready_.push_back(std::move(txn));
  } else if (const auto* relation = std::get_if<pgo::Relation>(&decoded)) {
    outbox_columns_.erase(relation->id);
    if (relation->name == "outbox") {
      OutboxColumns columns;
      for (int i = 0; i < static_cast<int>(relation->columns.size()); ++i) {
        const auto& name = relation->columns[i].name;
        if (name == "position") columns.position = i;
        if (name == "event_id") columns.event_id = i;
        if (name == "event_type") columns.event_type = i;
        if (name == "schema_version") columns.schema_version = i;
        if (name == "aggregate_type") columns.aggregate_type = i;
        if (name == "aggregate_id") columns.aggregate_id = i;
        if (name == "aggregate_version") columns.aggregate_version = i;
        if (name == "occurred_at") columns.occurred_at = i;
        if (name == "payload") columns.payload = i;
      }
      for (int index : {columns.position, columns.event_id, columns.event_type,
                        columns.schema_version, columns.aggregate_type, columns.aggregate_id,
                        columns.aggregate_version, columns.occurred_at, columns.payload}) {
        if (index < 0) {
          throw std::runtime_error(
              fmt::format("logical outbox: relation {}.outbox lacks a column of the outbox table",
                          relation->namespace_name));
        }
      }
      outbox_columns_[relation->id] = columns;
    }
    relations_[relation->id] = *relation;
  } else if (const auto* insert = std::get_if<pgo::Insert>(&decoded)) {
    if (!open_) throw std::runtime_error("logical outbox: Insert outside a transaction");
    if (!relations_.contains(insert->relation_id)) {
      throw std::runtime_error(fmt::format(
          "logical outbox: Insert into relation {} that was never described", insert->relation_id));
    }
    const auto columns = outbox_columns_.find(insert->relation_id);
    if (columns == outbox_columns_.end()) return;  // another table of the publication
    open_->events.push_back(DecodeRow(columns->second, insert->tuple));
  }
  // Type, Origin, Update, Delete, Truncate and Message carry nothing for the outbox reader
  // (the publication publishes inserts only).
}

cqrs::StoredEvent LogicalOutboxReader::DecodeRow(const OutboxColumns& columns,
                                                 const pgo::Tuple& row) {
  auto text = [&](int index, std::string_view name) -> const std::string& {
    if (index >= static_cast<int>(row.values.size())) {
      throw std::runtime_error(
          fmt::format("logical outbox: row has {} columns, no {}", row.values.size(), name));
    }
    const auto& value = row.values[index];
    if (value.kind != pgo::Value::Kind::kText) {
      throw std::runtime_error(fmt::format("logical outbox: {} is not sent as text (kind '{}')",
                                           name, static_cast<char>(value.kind)));
    }
    return value.data;
  };
  cqrs::StoredEvent event;
  event.position = ParseInt(text(columns.position, "position"), "position");
  auto& e = event.envelope;
  e.event_id = text(columns.event_id, "event_id");
  e.type = text(columns.event_type, "event_type");
  e.schema_version =
      static_cast<int>(ParseInt(text(columns.schema_version, "schema_version"), "schema_version"));
  e.aggregate_type = text(columns.aggregate_type, "aggregate_type");
  e.aggregate_id = text(columns.aggregate_id, "aggregate_id");
  e.aggregate_version =
      ParseInt(text(columns.aggregate_version, "aggregate_version"), "aggregate_version");
  e.occurred_at = ParseTimestamp(text(columns.occurred_at, "occurred_at"));
  e.payload = text(columns.payload, "payload");
  return event;
}

cqrs::EventBatch LogicalOutboxReader::FetchBatch(const cqrs::Checkpoint& after, std::size_t max) {
  std::lock_guard lock(mutex_);
  max = std::max<std::size_t>(max, 1);
  try {
    if (!stream_ || stream_->IsBroken() || after != delivered_) Open(after);
    Pump(std::chrono::milliseconds(0), max, /*stop_at_change=*/false);
  } catch (const cqrs::FatalProjectionError&) {
    Drop();
    throw;
  } catch (...) {
    Fault(std::current_exception());
  }

  cqrs::EventBatch batch;
  batch.next = after;
  Lsn bound = after.bound;
  while (!ready_.empty()) {
    auto& txn = ready_.front();
    if (!batch.events.empty() && batch.events.size() + txn.events.size() > max) break;
    for (auto& event : txn.events) {
      // Resent by the server (it streams from confirmed_flush_lsn) but applied already.
      const bool applied =
          txn.commit_lsn < after.bound ||
          std::tie(txn.commit_lsn, event.position) <= std::tie(after.xid, after.position);
      if (!applied) batch.events.push_back(std::move(event));
    }
    bound = std::max(bound, txn.end_lsn);
    ready_events_ -= txn.events.size();
    ready_.pop_front();
    if (batch.events.size() >= max) break;
  }
  if (ready_.empty() && !open_) bound = std::max(bound, idle_bound_);
  if (!batch.events.empty()) {
    batch.next.xid = batch.events.back().xid;
    batch.next.position = batch.events.back().position;
  }
  batch.next.bound = bound;
  delivered_ = batch.next;
  return batch;
}

bool LogicalOutboxReader::WaitForChange(std::chrono::milliseconds timeout) {
  std::lock_guard lock(mutex_);
  if (!stream_ || stream_->IsBroken()) return true;  // the next fetch (re)opens the stream
  if (Changed()) return true;
  try {
    Pump(timeout, static_cast<std::size_t>(-1), /*stop_at_change=*/true);
  } catch (...) {
    Fault(std::current_exception());
  }
  return Changed();
}

void LogicalOutboxReader::Acknowledge(const cqrs::Checkpoint& applied) {
  std::lock_guard lock(mutex_);
  if (!stream_ || stream_->IsBroken()) return;  // the next session starts from the store's
  // Never beyond what this session delivered (a checkpoint of another source is no position).
  const Lsn flushed = std::min(applied.bound, delivered_.bound);
  try {
    stream_->Confirm(flushed);
  } catch (const infra::pg::ConnectionLost&) {
    Drop();  // the next fetch opens a new session at the store's checkpoint
  }
}

Lsn LogicalOutboxReader::Confirmed() {
  std::lock_guard lock(mutex_);
  return stream_ ? stream_->confirmed() : 0;
}

SlotStatus LogicalOutboxReader::Slot() {
  std::lock_guard lock(sql_mutex_);
  infra::pg::Result rows;
  try {
    rows = sql_.Get().ExecPrepared(kSlotStatus, infra::pg::Params().Add(options_.names.slot));
  } catch (const infra::pg::ConnectionLost&) {
    sql_.Reset();
    throw;
  }
  SlotStatus status;
  if (rows.rows() == 0) return status;
  status.exists = true;
  status.wal_status = rows.String(0, 0);
  status.active = rows.Bool(0, 1);
  if (!rows.IsNull(0, 2)) status.restart_lsn = infra::pg::ParseLsn(rows.Text(0, 2));
  if (!rows.IsNull(0, 3)) status.confirmed_flush_lsn = infra::pg::ParseLsn(rows.Text(0, 3));
  status.retained_wal_bytes = rows.Int64(0, 4);
  status.confirmed_lag_bytes = rows.Int64(0, 5);
  return status;
}

}  // namespace shopcqrs::adapters::pg_outbox
