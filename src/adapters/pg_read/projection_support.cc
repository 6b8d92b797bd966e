#include "adapters/pg_read/projection_support.h"

#include <algorithm>
#include <exception>
#include <thread>
#include <utility>

#include "adapters/events/event_codec.h"
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
  writes_.Add(queries::kNotifyProgress, Params().Add(fmt::format("{}:{}", name_, to.bound)));
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

    const std::int64_t applied = batch->ApplyEvents(events);
    t[3] = Clock::now();

    batch->QueueWrites(tx);
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
