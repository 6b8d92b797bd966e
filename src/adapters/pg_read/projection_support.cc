#include "adapters/pg_read/projection_support.h"

#include <algorithm>
#include <exception>
#include <map>
#include <thread>
#include <utility>

#include <boost/json.hpp>

#include "adapters/events/event_codec.h"
#include "adapters/events/footprint.h"
#include "adapters/pg_read/queries.h"

namespace shopcqrs::adapters::pg_read::projection_support {

using infra::pg::Params;

std::vector<std::optional<domain::DomainEvent>> DecodeWanted(
    const std::vector<cqrs::StoredEvent>& events, bool (*wanted)(std::string_view type)) {
  constexpr std::size_t kParallelFrom = 1000;
  std::vector<std::optional<domain::DomainEvent>> slots(events.size());
  auto decode = [&](std::size_t from, std::size_t to) {
    for (std::size_t i = from; i < to; ++i) {
      if (wanted == nullptr || wanted(events::DecodedTypeName(events[i].envelope))) {
        slots[i].emplace(events::DecodeStored(events[i]));
      }
    }
  };
  if (events.size() >= kParallelFrom && std::thread::hardware_concurrency() > 1) {
    const std::size_t half = events.size() / 2;
    std::exception_ptr failure;
    std::thread helper([&] {
      try {
        decode(half, events.size());
      } catch (...) {
        failure = std::current_exception();
      }
    });
    try {
      decode(0, half);
    } catch (...) {
      helper.join();
      throw;
    }
    helper.join();
    if (failure) std::rethrow_exception(failure);
  } else {
    decode(0, events.size());
  }
  return slots;
}

std::vector<domain::DomainEvent> DecodeAll(const std::vector<cqrs::StoredEvent>& events) {
  auto slots = DecodeWanted(events, nullptr);
  std::vector<domain::DomainEvent> decoded;
  decoded.reserve(events.size());
  for (auto& slot : slots) decoded.push_back(std::move(*slot));
  return decoded;
}

// synchronous_commit = on (the server default, set explicitly): a batch's COMMIT returns only
// once the read server has flushed it, and only then does the projector publish its bound
// (ProgressTracker) and the NOTIFY reach followers. A token is therefore never answered from data
// that a read-server crash could roll back. Group commit keeps the cost to one WAL flush per
// batch, not per event.
// work_mem: the set-based upserts read their rows from one function scan per table (4MB spilled a
// 5,000-order batch to a temporary file).
// enable_seqscan = off: every statement of a projector reads rows by key (ids, customer ids). Its
// statements are prepared once per connection, usually while the read database is still empty,
// and PostgreSQL may keep the generic plan it made then -- a sequential scan, which every later
// batch would pay in full on a grown table (0.3 ms per order load at 10k orders, measured). With
// sequential scans priced out, the plan is the key index whatever the statistics were.
// enable_hashjoin, enable_mergejoin = off: for the same reason, a generic plan made on an empty
// table joined a batch's rows to order_views by hashing them and reading the whole table by a
// full index scan (1.5 ms per live batch at 20k orders, measured); the projectors' joins are a
// batch's rows to their keys, nested loops over the key indexes.
// jit = off: the price of a disabled scan (which a staging table's scan still pays) lifts a
// plan's cost above every JIT threshold, and compiling with inlining took 0.4 s per catch-up
// batch (measured); the projectors' statements are short and never gain from JIT.
ProjectorConnection::ProjectorConnection(std::string conninfo)
    : connection_({.conninfo = std::move(conninfo),
                   .session = {.application_name = "shopcqrs-projector",
                               .settings = {{"TimeZone", "UTC"},
                                            {"work_mem", "64MB"},
                                            {"synchronous_commit", "on"},
                                            {"enable_seqscan", "off"},
                                            {"enable_hashjoin", "off"},
                                            {"enable_mergejoin", "off"},
                                            {"jit", "off"}}},
                   .statements = queries::All()}) {}

infra::pg::Connection& ProjectorConnection::Get() { return connection_.Get(); }

cqrs::Checkpoint ProjectorConnection::LoadCheckpoint(const std::string& name) {
  try {
    auto r = Get().ExecPrepared(queries::kLoadCheckpoint, Params().Add(name));
    if (r.rows() == 0) return {};
    return cqrs::Checkpoint{ToU64(r.Int64(0, 0)), r.Int64(0, 1), ToU64(r.Int64(0, 2))};
  } catch (const infra::pg::ConnectionLost&) {
    connection_.Reset();
    throw;
  }
}

void ProjectorConnection::Abandon() {
  infra::pg::Connection* connection = connection_.IfOpen();  // a broken one is dropped
  if (connection && connection->InTransaction()) {
    try {
      connection->Exec("ROLLBACK");
    } catch (...) {
      connection_.Reset();
    }
  }
}

namespace {

void QueueBegin(infra::pg::Connection::Pipeline& pipeline, const std::string& name,
                const cqrs::Checkpoint& from) {
  pipeline.AddText("BEGIN");
  pipeline.Add(queries::kClaimCheckpoint, Params()
                                              .Add(name)
                                              .Add(static_cast<std::int64_t>(from.xid))
                                              .Add(from.position)
                                              .Add(static_cast<std::int64_t>(from.bound)));
}

constexpr std::size_t kBeginStatements = 2;  // BEGIN, the claim

}  // namespace

BatchTransaction::BatchTransaction(ProjectorConnection& connection, const std::string& name,
                                   const cqrs::Checkpoint& from)
    : connection_(connection),
      name_(name),
      from_(from),
      loads_(connection.Get()),
      writes_(connection.Get()) {
  QueueBegin(loads_, name_, from_);
}

BatchTransaction::~BatchTransaction() {
  if (begun_ && !committed_) connection_.Abandon();
}

void BatchTransaction::Load(const infra::pg::Statement& statement, infra::pg::Params params,
                            Reader read) {
  loads_.Add(statement, std::move(params));
  readers_.push_back(std::move(read));
}

bool BatchTransaction::RunLoads() {
  if (readers_.empty()) return false;  // BEGIN and the claim go with the writes
  begun_ = true;
  const auto results = loads_.Run();
  for (std::size_t i = 0; i < readers_.size(); ++i) readers_[i](results[kBeginStatements + i]);
  return true;
}

void BatchTransaction::Begin() {
  if (begun_) return;
  begun_ = true;
  loads_.Run();
}

void BatchTransaction::Commit(const cqrs::Checkpoint& to, std::int64_t applied) {
  if (!begun_) {
    // Nothing was loaded or sent: the whole transaction is one round trip.
    infra::pg::Connection::Pipeline first(connection_.Get());
    QueueBegin(first, name_, from_);
    writes_.Prepend(std::move(first));
  }
  begun_ = true;
  writes_.Add(queries::kStoreCheckpoint, Params()
                                             .Add(name_)
                                             .Add(static_cast<std::int64_t>(to.xid))
                                             .Add(to.position)
                                             .Add(static_cast<std::int64_t>(to.bound))
                                             .Add(applied));
  writes_.Add(queries::kNotifyProgress,
              Params().Add(fmt::format("{}:{}", name_, to.bound)).Add(name_));
  writes_.AddText("COMMIT");
  writes_.Run();
  committed_ = true;
}

BatchProjection::BatchProjection(std::string conninfo, std::string name, Decoder decode,
                                 CacheMaker make_cache)
    : decode_(decode),
      name_(std::move(name)),
      connection_(std::move(conninfo)),
      cache_(make_cache()) {}

BatchProjection::~BatchProjection() = default;

void BatchProjection::Reset() {
  cache_->Clear();
  cached_at_.reset();
  connection_.Reset();
}

cqrs::Checkpoint BatchProjection::LoadCheckpoint() { return connection_.LoadCheckpoint(name_); }

void BatchProjection::Prepare(const std::vector<cqrs::StoredEvent>& events) {
  if (events.empty()) return;
  std::unique_ptr<Batch> batch;
  try {
    batch = decode_(events, *cache_);  // holds the cache; reads it only when applied
  } catch (...) {
    return;  // Apply decodes again and reports it
  }
  std::lock_guard lock(prepared_mutex_);
  prepared_ = std::move(batch);
  prepared_size_ = events.size();
  prepared_first_ = {events.front().xid, events.front().position};
  prepared_last_ = {events.back().xid, events.back().position};
}

std::unique_ptr<Batch> BatchProjection::TakePrepared(const std::vector<cqrs::StoredEvent>& events) {
  std::lock_guard lock(prepared_mutex_);
  auto batch = std::move(prepared_);
  // (xid, position) is unique in the log: the same size, first and last event are the same events.
  if (!batch || events.empty() || prepared_size_ != events.size() ||
      prepared_first_ != std::pair(events.front().xid, events.front().position) ||
      prepared_last_ != std::pair(events.back().xid, events.back().position)) {
    return nullptr;
  }
  return batch;
}

BatchProjection::Timings BatchProjection::GetTimings() const {
  std::lock_guard lock(timings_mutex_);
  return timings_;
}

void BatchProjection::Apply(const cqrs::Checkpoint& from,
                            const std::vector<cqrs::StoredEvent>& events,
                            const cqrs::Checkpoint& to) {
  ApplyWithDeadLetters(from, events, to, {});
}

namespace {

// A statement refused for its data, not for the state of the server or the session.
bool IsDeterministic(const infra::pg::PgError& error) {
  const auto& state = error.sqlstate();
  return state.starts_with("22") || state.starts_with("23") || state.starts_with("42") ||
         state.starts_with("P0");
}

std::string ParkedJson(const std::vector<cqrs::ParkedEvent>& parked) {
  boost::json::array rows;
  for (const auto& p : parked) {
    const auto& e = p.event;
    boost::json::object row{{"position", e.position},
                            {"xid", static_cast<std::int64_t>(e.xid)},
                            {"aggregate_type", e.envelope.aggregate_type},
                            {"aggregate_id", e.envelope.aggregate_id},
                            {"event_id", e.envelope.event_id},
                            {"event_type", e.envelope.type},
                            {"schema_version", e.envelope.schema_version},
                            {"aggregate_version", e.envelope.aggregate_version},
                            {"occurred_at_ms", e.envelope.occurred_at.time_since_epoch().count()},
                            {"committed_at_ms", e.committed_at.time_since_epoch().count()},
                            {"payload", e.envelope.payload},
                            {"error", p.error}};
    auto& keys = row["keys"].emplace_array();
    for (const auto& k : p.keys) keys.emplace_back(k);
    rows.push_back(std::move(row));
  }
  return boost::json::serialize(rows);
}

cqrs::TimePoint AtMs(std::int64_t ms) { return cqrs::TimePoint{std::chrono::milliseconds(ms)}; }

}  // namespace

std::vector<std::string> BatchProjection::Footprint(const cqrs::StoredEvent& event) {
  return events::Footprint(event);
}

std::vector<cqrs::DeadLetter> ReadDeadLetters(infra::pg::Connection& connection,
                                              const std::string& name, bool prepared) {
  auto r = prepared ? connection.ExecPrepared(queries::kLoadDeadLetters, Params().Add(name))
                    : connection.Exec(queries::kLoadDeadLetters.sql, Params().Add(name));
  std::vector<cqrs::DeadLetter> letters;
  std::map<std::string, std::size_t> index;  // aggregate id -> letters
  for (int i = 0; i < r.rows(); ++i) {
    const auto id = r.String(i, 3);
    auto [it, first] = index.try_emplace(id, letters.size());
    if (first) {
      cqrs::DeadLetter letter;
      letter.aggregate = {r.String(i, 2), id};
      letter.first_position = r.Int64(i, 0);
      letter.first_xid = ToU64(r.Int64(i, 1));
      letter.error = r.String(i, 4);
      letter.parked_at = AtMs(r.Int64(i, 6));
      letters.push_back(std::move(letter));
    }
    auto& letter = letters[it->second];
    ++letter.events;
    const auto keys = boost::json::parse(r.String(i, 5));
    for (const auto& key : keys.as_array()) {
      std::string k(key.as_string());
      if (std::ranges::find(letter.keys, k) == letter.keys.end()) letter.keys.push_back(k);
    }
  }
  return letters;
}

std::vector<cqrs::DeadLetter> BatchProjection::LoadDeadLetters() {
  try {
    return ReadDeadLetters(connection_.Get(), name_, true);
  } catch (const infra::pg::ConnectionLost&) {
    connection_.Reset();
    throw;
  }
}

std::vector<cqrs::StoredEvent> BatchProjection::LoadParkedEvents(
    const cqrs::AggregateKey& aggregate) {
  try {
    auto r = connection_.Get().ExecPrepared(queries::kLoadParkedEvents,
                                            Params().Add(name_).Add(aggregate.id));
    std::vector<cqrs::StoredEvent> events;
    for (int i = 0; i < r.rows(); ++i) {
      cqrs::StoredEvent e;
      e.position = r.Int64(i, 0);
      e.xid = ToU64(r.Int64(i, 1));
      e.envelope.event_id = r.String(i, 2);
      e.envelope.type = r.String(i, 3);
      e.envelope.schema_version = static_cast<int>(r.Int64(i, 4));
      e.envelope.aggregate_type = r.String(i, 5);
      e.envelope.aggregate_id = r.String(i, 6);
      e.envelope.aggregate_version = r.Int64(i, 7);
      e.envelope.occurred_at = AtMs(r.Int64(i, 8));
      e.committed_at = AtMs(r.Int64(i, 9));
      e.envelope.payload = r.String(i, 10);
      events.push_back(std::move(e));
    }
    return events;
  } catch (const infra::pg::ConnectionLost&) {
    connection_.Reset();
    throw;
  }
}

std::vector<cqrs::SkipRecord> BatchProjection::LoadSkips() {
  try {
    auto r = connection_.Get().ExecPrepared(queries::kLoadSkips, Params().Add(name_));
    std::vector<cqrs::SkipRecord> skips;
    for (int i = 0; i < r.rows(); ++i) {
      skips.push_back(cqrs::SkipRecord{r.Int64(i, 0),
                                       ToU64(r.Int64(i, 1)),
                                       r.String(i, 2),
                                       {r.String(i, 3), r.String(i, 4)},
                                       r.Int64(i, 7),
                                       r.String(i, 5),
                                       AtMs(r.Int64(i, 6))});
    }
    return skips;
  } catch (const infra::pg::ConnectionLost&) {
    connection_.Reset();
    throw;
  }
}

void BatchProjection::ApplyWithDeadLetters(const cqrs::Checkpoint& from,
                                           const std::vector<cqrs::StoredEvent>& events,
                                           const cqrs::Checkpoint& to,
                                           const cqrs::DeadLetterChanges& changes) {
  try {
    ApplyBatch(from, events, to, changes);
  } catch (const infra::pg::PgError& error) {
    if (IsDeterministic(error)) {
      throw cqrs::DeterministicApplyError(
          fmt::format("{}: the read database refused the batch: {}", name_, error.what()));
    }
    throw;
  }
}

void BatchProjection::ApplyBatch(const cqrs::Checkpoint& from,
                                 const std::vector<cqrs::StoredEvent>& events,
                                 const cqrs::Checkpoint& to,
                                 const cqrs::DeadLetterChanges& changes) {
  using Clock = Timings::Clock;
  Clock::time_point t[6];
  t[0] = Clock::now();
  // The cached rows are the store's at the checkpoint last committed; a batch from another one
  // (a retry from what the store holds, a test handing a batch in twice) starts without them.
  if (cached_at_ != from) cache_->Clear();
  cached_at_.reset();
  auto batch = TakePrepared(events);
  if (!batch) batch = decode_(events, *cache_);
  t[1] = Clock::now();

  const bool fresh = std::ranges::all_of(events, [&](const cqrs::StoredEvent& e) {
    return std::pair(e.xid, e.position) > std::pair(from.xid, from.position);
  });
  bool loaded = false;
  try {
    BatchTransaction tx(connection_, name_, from);
    batch->QueueLoads(tx, fresh);
    loaded = tx.RunLoads();
    t[2] = Clock::now();

    batch->SetPassed(changes.pass);
    const std::int64_t applied = batch->ApplyEvents(events);
    t[3] = Clock::now();

    batch->QueueWrites(tx);
    auto& writes = tx.Writes();
    if (!changes.park.empty()) {
      writes.Add(queries::kParkEvents, Params().Add(name_).Add(ParkedJson(changes.park)));
    }
    if (changes.release) {
      writes.Add(queries::kReleaseAggregate, Params().Add(name_).Add(changes.release->id));
    }
    if (const auto& skip = changes.skip) {
      writes.Add(queries::kAddSkip, Params()
                                        .Add(name_)
                                        .Add(skip->position)
                                        .Add(static_cast<std::int64_t>(skip->xid))
                                        .Add(skip->event_id)
                                        .Add(skip->aggregate.type)
                                        .Add(skip->aggregate.id)
                                        .Add(skip->aggregate_version)
                                        .Add(skip->skipped_by)
                                        .Add(skip->skipped_at.time_since_epoch().count()));
    }
    if (!changes.park.empty() || changes.release) {
      writes.Add(queries::kBumpDeadLetterGeneration, Params().Add(name_));
    }
    if (changes.release && applied > 0) {
      writes.Add(queries::kCountRetried, Params().Add(name_).Add(applied));
    }
    t[4] = Clock::now();
    tx.Commit(to, applied);
    t[5] = Clock::now();
  } catch (...) {
    // Whether it committed may be unknown: the next batch loads everything.
    cache_->Clear();
    throw;
  }
  batch->Remember();
  cached_at_ = to;
  std::lock_guard lock(timings_mutex_);
  timings_.AddBatch(events.size(), t);
  if (loaded) ++timings_.load_trips;
}

}  // namespace shopcqrs::adapters::pg_read::projection_support
