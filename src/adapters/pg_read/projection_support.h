#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <iterator>
#include <memory>
#include <mutex>
#include <optional>
#include <ranges>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "cqrs/projector.h"
#include "domain/events.h"
#include "infra/pg/connection.h"

// Shared by the projections of the read database (PgReadProjection, SearchProjection): their
// shape (BatchProjection: one batch transaction per Apply, in timed phases), the projector
// connection, the checkpoint protocol of a batch transaction, loading rows, payload decoding and
// the JSON text the set-based writes take.
namespace shopcqrs::adapters::pg_read::projection_support {

inline std::uint64_t ToU64(std::int64_t v) { return static_cast<std::uint64_t>(v); }

// Text form of a uuid[] (the ids are canonical UUIDs: no quoting needed).
template <class Range>
std::string UuidArray(const Range& ids) {
  std::string out = "{";
  for (const auto& id : ids) {
    if (out.size() > 1) out.push_back(',');
    out += id;
  }
  out.push_back('}');
  return out;
}

// The uuid[] of the keys of `rows` (a map of id -> row).
template <class Rows>
std::string KeysArray(const Rows& rows) {
  return UuidArray(std::views::keys(rows));
}

// The uuid[] of the keys of the rows `include` (a predicate or a pointer to a bool member)
// accepts; nullopt when it accepts none.
template <class Rows, class Include>
std::optional<std::string> KeysArrayWhere(const Rows& rows, Include include) {
  std::vector<std::string_view> ids;
  for (const auto& [id, row] : rows) {
    if (std::invoke(include, row)) ids.push_back(id);
  }
  if (ids.empty()) return std::nullopt;
  return UuidArray(ids);
}

// Reads column `col` of row `row` into `out`: text, nullable text, bigint or nullable bigint.
template <class T>
void ReadColumn(const infra::pg::Result& r, int row, int col, T& out) {
  if constexpr (std::is_same_v<T, std::string>) {
    out = r.String(row, col);
  } else if constexpr (std::is_same_v<T, std::optional<std::string>>) {
    out = r.OptString(row, col);
  } else if constexpr (std::is_same_v<T, std::int64_t>) {
    out = r.Int64(row, col);
  } else {
    static_assert(std::is_same_v<T, std::optional<std::int64_t>>);
    out = r.OptInt64(row, col);
  }
}

// A minimal JSON text writer for the set-based writes: the rows go out as one JSON array per
// table, built by appending (no intermediate DOM, embedded JSON such as order lines is copied
// as is instead of being parsed and re-serialized).
class JsonOut {
 public:
  void BeginArray() { text_.push_back('['); }
  void EndArray() { text_.push_back(']'); }
  void BeginObject() {
    if (text_.size() > 1 && text_.back() == '}') text_.push_back(',');
    text_.push_back('{');
    first_ = true;
  }
  void EndObject() { text_.push_back('}'); }
  bool Empty() const { return text_.size() <= 1; }
  std::string Take() { return std::move(text_); }

  void Field(std::string_view key, std::string_view value) {
    Key(key);
    String(value);
  }
  void Field(std::string_view key, const std::string& value) {
    Field(key, std::string_view(value));
  }
  void Field(std::string_view key, const std::optional<std::string>& value) {
    Key(key);
    if (value) {
      String(*value);
    } else {
      text_ += "null";
    }
  }
  void Field(std::string_view key, std::int64_t value) {
    Key(key);
    fmt::format_to(std::back_inserter(text_), "{}", value);
  }
  void Field(std::string_view key, const std::optional<std::int64_t>& value) {
    Key(key);
    if (value) {
      fmt::format_to(std::back_inserter(text_), "{}", *value);
    } else {
      text_ += "null";
    }
  }
  void RawField(std::string_view key, std::string_view json) {
    Key(key);
    text_ += json;
  }
  void String(std::string_view value) { AppendString(text_, value); }

  static void AppendString(std::string& out, std::string_view value) {
    out.push_back('"');
    for (const char c : value) {
      const auto u = static_cast<unsigned char>(c);
      if (c == '"' || c == '\\') {
        out.push_back('\\');
        out.push_back(c);
      } else if (u < 0x20) {
        fmt::format_to(std::back_inserter(out), "\\u{:04x}", u);
      } else {
        out.push_back(c);
      }
    }
    out.push_back('"');
  }

 private:
  void Key(std::string_view key) {
    if (!first_) text_.push_back(',');
    first_ = false;
    text_.push_back('"');
    text_ += key;
    text_ += "\":";
  }
  std::string text_;
  bool first_ = true;
};

// A JSON array with one object per row of `rows` (a map of key -> row) that `include` accepts
// (a predicate or a pointer to a bool member), written by `fields(out, key, row)`; nullopt when
// no row is included.
template <class Rows, class Include, class Fields>
std::optional<std::string> RowsJson(const Rows& rows, Include include, Fields fields) {
  JsonOut out;
  out.BeginArray();
  for (const auto& [key, row] : rows) {
    if (!std::invoke(include, row)) continue;
    out.BeginObject();
    fields(out, key, row);
    out.EndObject();
  }
  if (out.Empty()) return std::nullopt;
  out.EndArray();
  return out.Take();
}

// What every row of a batch carries: the version of the aggregate it stands for (0: the store
// has no row for it yet), whether the batch changed it, and whether its stored state is already
// in the batch (from the row cache, or known to be absent) so that it needs no load.
struct RowState {
  std::int64_t version = 0;
  bool dirty = false;
  bool known = false;
};

// One column of a row type: its name in the JSON the upserts take and the member that holds it
// (RawJson: a member holding JSON text, written as is). A row type's columns are a tuple of
// them, in the order its load statement answers them after the id (LoadRows).
template <class Row, class T, bool RawJson = false>
struct Column {
  std::string_view name;
  T Row::*member;
};
template <class Row, class T>
constexpr Column<Row, T> Col(std::string_view name, T Row::*member) {
  return {name, member};
}
template <class Row>
constexpr Column<Row, std::string, true> RawJsonCol(std::string_view name,
                                                    std::string Row::*member) {
  return {name, member};
}

template <class Row, class T, bool RawJson, class R>
void WriteColumn(JsonOut& out, const Column<Row, T, RawJson>& column, const R& row) {
  if constexpr (RawJson) {
    out.RawField(column.name, row.*column.member);
  } else {
    out.Field(column.name, row.*column.member);
  }
}

// RowsJson of `columns`, each object led by the row's "id".
template <class Rows, class Include, class... Columns>
std::optional<std::string> ColumnsJson(const Rows& rows, Include include,
                                       const std::tuple<Columns...>& columns) {
  return RowsJson(rows, include, [&columns](JsonOut& out, const auto& id, const auto& row) {
    out.Field("id", id);
    std::apply([&](const auto&... column) { (WriteColumn(out, column, row), ...); }, columns);
  });
}

// Decodes the payloads (JSON parsing is most of the client-side work of a batch) through
// events::DecodeStored, which reads an older schema version through the upcasters; large batches
// are split across two threads. An undecodable event is a cqrs::DeterministicApplyError.
std::vector<domain::DomainEvent> DecodeAll(const std::vector<cqrs::StoredEvent>& events);
// The same for the events whose type (as the upcasters name it, events::DecodedTypeName)
// `wanted` accepts; the others stay nullopt (not parsed).
std::vector<std::optional<domain::DomainEvent>> DecodeWanted(
    const std::vector<cqrs::StoredEvent>& events, bool (*wanted)(std::string_view type));

// Cumulative wall time of a projection's Apply phases, in seconds (for benchmarks and
// profiling).
struct ApplyTimings {
  std::uint64_t batches = 0;
  std::uint64_t events = 0;
  std::uint64_t load_trips = 0;  // batches that needed the round trip of loads (cache misses)
  double decode = 0;             // payload JSON -> domain events
  double load = 0;    // BEGIN, checkpoint lock, loading the touched rows (one round trip)
  double apply = 0;   // the events applied to the rows in memory
  double encode = 0;  // the changed rows encoded for the set-based writes
  double write = 0;   // writes, checkpoint, NOTIFY, COMMIT (one round trip)

  using Clock = std::chrono::steady_clock;
  // Adds one batch of `count` events: t[0] its start, t[1]..t[5] the ends of its phases.
  void AddBatch(std::size_t count, const Clock::time_point (&t)[6]) {
    auto seconds = [](Clock::duration d) { return std::chrono::duration<double>(d).count(); };
    ++batches;
    events += count;
    decode += seconds(t[1] - t[0]);
    load += seconds(t[2] - t[1]);
    apply += seconds(t[3] - t[2]);
    encode += seconds(t[4] - t[3]);
    write += seconds(t[5] - t[4]);
  }
};

// Copies the members `columns` name from `from` to `to` (rows of one type).
template <class Row, class... Columns>
void CopyColumns(const std::tuple<Columns...>& columns, const Row& from, Row& to) {
  std::apply([&](const auto&... column) { ((to.*column.member = from.*column.member), ...); },
             columns);
}

// What a projection keeps between batches of one table's rows: for each id, the row as the
// store holds it at the checkpoint the projection last committed (BatchProjection drops every
// cache when a batch fails or starts from another checkpoint, so a cached row is never older
// than the store). Live batches touch rows that recent batches wrote (an order is placed, then
// paid; a customer and the products come back often): they find them here and need no load,
// and the whole batch becomes one round trip. Two generations of at most capacity/2 rows each:
// a lookup promotes nothing, an insert goes to the young one, and when it fills up it becomes
// the old one (the previous old one is dropped) -- bounded memory, recently used rows kept.
template <class Row>
class RowCache {
 public:
  explicit RowCache(std::size_t capacity = 20000) : half_(std::max<std::size_t>(capacity / 2, 1)) {}
  const Row* Find(const std::string& id) const {
    if (auto it = young_.find(id); it != young_.end()) return &it->second;
    if (auto it = old_.find(id); it != old_.end()) return &it->second;
    return nullptr;
  }
  void Put(const std::string& id, const Row& row) {
    young_.insert_or_assign(id, row);
    if (young_.size() >= half_) {
      old_ = std::move(young_);
      young_.clear();
    }
  }
  void Clear() {
    young_.clear();
    old_.clear();
  }
  std::size_t size() const { return young_.size() + old_.size(); }
  // Whether `rows` rows fit into one generation.
  bool Fits(std::size_t rows) const { return rows < half_; }

 private:
  std::size_t half_;
  std::unordered_map<std::string, Row> young_;
  std::unordered_map<std::string, Row> old_;
};

// The row caches of one projection (a type of its own per projection, see MakeCache); dropped
// as a whole.
class BatchCache {
 public:
  virtual ~BatchCache() = default;
  virtual void Clear() = 0;
};

// The connection of one projection to the read database: opened on first use with the
// projector session settings and every pg_read statement prepared, reopened after a fault.
class ProjectorConnection {
 public:
  explicit ProjectorConnection(std::string conninfo);

  infra::pg::Connection& Get();
  void Reset() { connection_.Reset(); }
  // The stored checkpoint of projection `name` (all zero when it has none).
  cqrs::Checkpoint LoadCheckpoint(const std::string& name);
  // For the catch block of a failed batch: rolls back its transaction, or drops the connection
  // if it is broken (or the rollback fails).
  void Abandon();

 private:
  infra::pg::ReconnectingConnection connection_;
};

// The parked aggregates of projection `name` (dead_letters, migration 0008), in the order of
// their first parked event; by the prepared statement or (`prepared` false) as plain SQL.
std::vector<cqrs::DeadLetter> ReadDeadLetters(infra::pg::Connection& connection,
                                              const std::string& name, bool prepared);

// One batch transaction of a read-database projection, in at most two round trips:
//   1. BEGIN, the compare-and-set claim of the checkpoint row (created if missing, locked, and
//      required to hold `from`, else the transaction fails with SQLSTATE
//      queries::kCheckpointMovedState before anything is written: concurrent projectors of one
//      projection serialize here, and everything loaded afterwards is current) and the loads
//      queued with Load -- RunLoads sends them and hands each result to its reader. With
//      nothing to load, BEGIN and the claim go with the writes instead: one round trip.
//   2. the writes queued on Writes(), the checkpoint (exactly `to`), the NOTIFY of
//      kProgressChannel ("<name>:<bound>", what ProgressListener follows) and COMMIT -- Commit.
// A transaction not committed is rolled back (or its broken connection dropped) when it ends.
class BatchTransaction {
 public:
  BatchTransaction(ProjectorConnection& connection, const std::string& name,
                   const cqrs::Checkpoint& from);
  ~BatchTransaction();
  BatchTransaction(const BatchTransaction&) = delete;
  BatchTransaction& operator=(const BatchTransaction&) = delete;

  using Reader = std::function<void(const infra::pg::Result&)>;
  // Queues a load; RunLoads hands its result to `read`.
  void Load(const infra::pg::Statement& statement, infra::pg::Params params, Reader read);
  // Sends the loads (with BEGIN and the claim); answers false, sending nothing, when none is
  // queued.
  bool RunLoads();
  // Sends BEGIN and the claim now if they are still queued (before statements outside the
  // pipelines, such as COPY).
  void Begin();
  infra::pg::Connection& connection() { return connection_.Get(); }
  infra::pg::Connection::Pipeline& Writes() { return writes_; }
  const std::string& name() const { return name_; }
  const cqrs::Checkpoint& from() const { return from_; }
  void Commit(const cqrs::Checkpoint& to, std::int64_t applied);

 private:
  ProjectorConnection& connection_;
  const std::string& name_;
  cqrs::Checkpoint from_;
  infra::pg::Connection::Pipeline loads_;
  infra::pg::Connection::Pipeline writes_;
  std::vector<Reader> readers_;
  bool begun_ = false;
  bool committed_ = false;
};

// Queues the load of the rows of `rows` (a map of id -> row) by `statement`: its one parameter
// is their ids' uuid[], its columns the id and then `columns`. A row found in `cache` is copied
// from there instead, and a row already `known` is left alone; nothing is queued when every row
// is known.
template <class Rows, class... Columns>
void LoadRows(BatchTransaction& tx, const infra::pg::Statement& statement, Rows& rows,
              const std::tuple<Columns...>& columns,
              const RowCache<typename Rows::mapped_type>* cache = nullptr) {
  std::vector<std::string_view> missing;
  for (auto& [id, row] : rows) {
    if (row.known) continue;
    if (const auto* cached = cache ? cache->Find(id) : nullptr) {
      CopyColumns(columns, *cached, row);
      row.known = true;
    } else {
      missing.push_back(id);
    }
  }
  if (missing.empty()) return;
  tx.Load(
      statement, infra::pg::Params().Add(UuidArray(missing)),
      [&rows, columns](const infra::pg::Result& r) {
        for (int i = 0; i < r.rows(); ++i) {
          auto& row = rows[r.String(i, 0)];
          int col = 1;
          std::apply(
              [&](const auto&... column) { (ReadColumn(r, i, col++, row.*column.member), ...); },
              columns);
        }
      });
}

// After a commit: every row of `rows` goes into `cache` as the store now holds it. A batch with
// more rows than a generation holds (catching up) empties the cache instead: most of its rows
// would be evicted at once, and the cache's older copies of them are stale now.
template <class Rows>
void RememberRows(const Rows& rows, RowCache<typename Rows::mapped_type>& cache) {
  if (!cache.Fits(rows.size())) {
    cache.Clear();
    return;
  }
  for (const auto& [id, row] : rows) cache.Put(id, row);
}

// The state one batch of a projection works on: the rows its events touch, loaded, changed in
// memory and written back.
class Batch {
 public:
  virtual ~Batch() = default;
  // Queues the loads of the rows the events touch that the cache does not hold (LoadRows).
  // `fresh`: every event of the batch lies after the checkpoint it starts from, so the store
  // holds nothing of them (an aggregate whose creating event is in the batch has no row yet).
  virtual void QueueLoads(BatchTransaction& tx, bool fresh) = 0;
  // Applies the events to the loaded rows; answers how many count as applied.
  virtual std::int64_t ApplyEvents(const std::vector<cqrs::StoredEvent>& events) = 0;
  // Queues the writes of the changed rows on tx.Writes() (or sends them, e.g. by COPY).
  virtual void QueueWrites(BatchTransaction& tx) = 0;
  // The batch committed: its rows go into the projection's cache (RememberRows).
  virtual void Remember() = 0;

  // The skipped events' versions (cqrs::DeadLetterChanges::pass), for the version guards.
  void SetPassed(const std::vector<cqrs::PassedVersion>& pass) { passed_ = &pass; }

 protected:
  // `have` moved past the skipped versions that follow it (cqrs::PassedUpTo).
  std::int64_t PassedUpTo(std::string_view type, std::string_view id, std::int64_t have) const {
    return passed_ ? cqrs::PassedUpTo(*passed_, type, id, have) : have;
  }

 private:
  const std::vector<cqrs::PassedVersion>* passed_ = nullptr;
};

// A projection of the read database: its own connection (reopened after a fault) and
// checkpoint row, and an Apply that is one BatchTransaction in timed phases -- decode the
// payloads into the batch's state (`decode`, which notes the rows the events touch); load those
// rows with the checkpoint claim (one round trip, skipped when the projection's row cache holds
// them all or they are new); apply the events in memory; queue the writes; commit them with the
// checkpoint and the NOTIFY (one round trip).
class BatchProjection : public cqrs::ProjectionStore {
 public:
  // Cumulative wall time of Apply's phases, in seconds (for benchmarks and profiling).
  using Timings = ApplyTimings;
  using Decoder = std::unique_ptr<Batch> (*)(const std::vector<cqrs::StoredEvent>& events,
                                             BatchCache& cache);
  using CacheMaker = std::unique_ptr<BatchCache> (*)();

  BatchProjection(std::string conninfo, std::string name, Decoder decode, CacheMaker make_cache);
  ~BatchProjection() override;

  cqrs::Checkpoint LoadCheckpoint() override;
  void Apply(const cqrs::Checkpoint& from, const std::vector<cqrs::StoredEvent>& events,
             const cqrs::Checkpoint& to) override;
  void Reset() override;

  // Dead letters (migration 0008) in the same transaction as the batch: the skipped events'
  // versions passed first (before the loads, which then see them), the parked events, released
  // aggregates and skip records written with the rows, and the projection's dead-letter
  // generation raised, which the progress NOTIFY carries. A statement the server refuses for
  // its data (SQLSTATE classes 22, 23, 42, P0) is a cqrs::DeterministicApplyError.
  bool KeepsDeadLetters() const override { return true; }
  void ApplyWithDeadLetters(const cqrs::Checkpoint& from,
                            const std::vector<cqrs::StoredEvent>& events,
                            const cqrs::Checkpoint& to,
                            const cqrs::DeadLetterChanges& changes) override;
  std::vector<cqrs::DeadLetter> LoadDeadLetters() override;
  std::vector<cqrs::StoredEvent> LoadParkedEvents(const cqrs::AggregateKey& aggregate) override;
  std::vector<cqrs::SkipRecord> LoadSkips() override;
  std::vector<std::string> Footprint(const cqrs::StoredEvent& event) override;
  // Decodes a prefetched batch ahead of its Apply (which then skips its decode phase).
  void Prepare(const std::vector<cqrs::StoredEvent>& events) override;
  Timings GetTimings() const;

 private:
  void ApplyBatch(const cqrs::Checkpoint& from, const std::vector<cqrs::StoredEvent>& events,
                  const cqrs::Checkpoint& to, const cqrs::DeadLetterChanges& changes);
  // The batch Prepare decoded, if `events` are its events (else null).
  std::unique_ptr<Batch> TakePrepared(const std::vector<cqrs::StoredEvent>& events);

  Decoder decode_;
  std::mutex prepared_mutex_;
  std::unique_ptr<Batch> prepared_;
  std::size_t prepared_size_ = 0;
  std::pair<std::uint64_t, std::int64_t> prepared_first_;  // (xid, position) of its first event
  std::pair<std::uint64_t, std::int64_t> prepared_last_;   // and of its last
  std::string name_;
  ProjectorConnection connection_;
  std::unique_ptr<BatchCache> cache_;
  // The checkpoint the cache belongs to (the last one committed); a batch from any other drops it.
  std::optional<cqrs::Checkpoint> cached_at_;
  mutable std::mutex timings_mutex_;
  Timings timings_;
};

// A Decoder that builds batch state `State` from the events and its cache type State::Cache.
template <class State>
std::unique_ptr<Batch> MakeBatch(const std::vector<cqrs::StoredEvent>& events, BatchCache& cache) {
  return std::make_unique<State>(events, static_cast<typename State::Cache&>(cache));
}
// The CacheMaker of State::Cache.
template <class State>
std::unique_ptr<BatchCache> MakeCache() {
  return std::make_unique<typename State::Cache>();
}

}  // namespace shopcqrs::adapters::pg_read::projection_support
