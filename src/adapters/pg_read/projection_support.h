#pragma once

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
// has no row for it yet) and whether the batch changed it.
struct RowState {
  std::int64_t version = 0;
  bool dirty = false;
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

// Decodes the payloads (JSON parsing is most of the client-side work of a batch); large
// batches are split across two threads. An undecodable event is a cqrs::FatalProjectionError.
std::vector<domain::DomainEvent> DecodeAll(const std::vector<cqrs::StoredEvent>& events);
// The same for the events whose type `wanted` accepts; the others stay nullopt (not parsed).
std::vector<std::optional<domain::DomainEvent>> DecodeWanted(
    const std::vector<cqrs::StoredEvent>& events, bool (*wanted)(std::string_view type));

// Cumulative wall time of a projection's Apply phases, in seconds (for benchmarks and
// profiling).
struct ApplyTimings {
  std::uint64_t batches = 0;
  std::uint64_t events = 0;
  double decode = 0;  // payload JSON -> domain events
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
  void RunLoads();
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

// Queues the load of the rows of `rows` (a map of id -> row; nothing when it is empty) by
// `statement`: its one parameter is their ids' uuid[], its columns the id and then `columns`.
template <class Rows, class... Columns>
void LoadRows(BatchTransaction& tx, const infra::pg::Statement& statement, Rows& rows,
              const std::tuple<Columns...>& columns) {
  if (rows.empty()) return;
  tx.Load(
      statement, infra::pg::Params().Add(KeysArray(rows)),
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

// The state one batch of a projection works on: the rows its events touch, loaded, changed in
// memory and written back.
class Batch {
 public:
  virtual ~Batch() = default;
  // Queues the loads of the rows the events touch (LoadRows).
  virtual void QueueLoads(BatchTransaction& tx) = 0;
  // Applies the events to the loaded rows; answers how many count as applied.
  virtual std::int64_t ApplyEvents(const std::vector<cqrs::StoredEvent>& events) = 0;
  // Queues the writes of the changed rows on tx.Writes() (or sends them, e.g. by COPY).
  virtual void QueueWrites(BatchTransaction& tx) = 0;
};

// A projection of the read database: its own connection (reopened after a fault) and
// checkpoint row, and an Apply that is one BatchTransaction in timed phases -- decode the
// payloads into the batch's state (`decode`, which notes the rows the events touch); load those
// rows with the checkpoint claim (one round trip); apply the events in memory; queue the writes;
// commit them with the checkpoint and the NOTIFY (one round trip).
class BatchProjection : public cqrs::ProjectionStore {
 public:
  // Cumulative wall time of Apply's phases, in seconds (for benchmarks and profiling).
  using Timings = ApplyTimings;
  using Decoder = std::unique_ptr<Batch> (*)(const std::vector<cqrs::StoredEvent>& events);

  BatchProjection(std::string conninfo, std::string name, Decoder decode);
  ~BatchProjection() override;

  cqrs::Checkpoint LoadCheckpoint() override;
  void Apply(const cqrs::Checkpoint& from, const std::vector<cqrs::StoredEvent>& events,
             const cqrs::Checkpoint& to) override;
  void Reset() override;
  // Decodes a prefetched batch ahead of its Apply (which then skips its decode phase).
  void Prepare(const std::vector<cqrs::StoredEvent>& events) override;
  Timings GetTimings() const;

 private:
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
  mutable std::mutex timings_mutex_;
  Timings timings_;
};

// A Decoder that builds batch state `State` from the events.
template <class State>
std::unique_ptr<Batch> MakeBatch(const std::vector<cqrs::StoredEvent>& events) {
  return std::make_unique<State>(events);
}

}  // namespace shopcqrs::adapters::pg_read::projection_support
