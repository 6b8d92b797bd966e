#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "cqrs/projector.h"
#include "domain/events.h"
#include "infra/pg/connection.h"

// Shared by the projections of the read database (PgReadProjection, SearchProjection): the
// projector connection, the checkpoint protocol of a batch transaction, payload decoding and
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

// A JSON array with one object per row of `rows` (a map of id -> row) that `include` accepts,
// written by `fields(out, id, row)`; nullopt when no row is included.
template <class Rows, class Include, class Fields>
std::optional<std::string> RowsJson(const Rows& rows, Include include, Fields fields) {
  JsonOut out;
  out.BeginArray();
  for (const auto& [id, row] : rows) {
    if (!include(row)) continue;
    out.BeginObject();
    fields(out, id, row);
    out.EndObject();
  }
  if (out.Empty()) return std::nullopt;
  out.EndArray();
  return out.Take();
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

// The index Load never answers: a load that was not queued.
inline constexpr std::size_t kNone = static_cast<std::size_t>(-1);

// One batch transaction of a read-database projection, in at most two round trips:
//   1. BEGIN, the compare-and-set claim of the checkpoint row (created if missing, locked, and
//      required to hold `from`, else the transaction fails with SQLSTATE
//      queries::kCheckpointMovedState before anything is written: concurrent projectors of one
//      projection serialize here, and everything loaded afterwards is current) and the loads
//      queued with Load -- RunLoads sends them. With nothing to load, BEGIN and the claim go
//      with the writes instead: one round trip.
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

  // Queues a load; answers the index of its result in what RunLoads answers.
  std::size_t Load(const infra::pg::Statement& statement, infra::pg::Params params);
  std::vector<infra::pg::Result> RunLoads();
  // Sends BEGIN and the claim now if they are still queued (before statements outside the
  // pipelines, such as COPY).
  void Begin();
  infra::pg::Connection& connection() { return connection_.Get(); }
  infra::pg::Connection::Pipeline& Writes() { return writes_; }
  void Commit(const cqrs::Checkpoint& to, std::int64_t applied);

 private:
  ProjectorConnection& connection_;
  const std::string& name_;
  cqrs::Checkpoint from_;
  infra::pg::Connection::Pipeline loads_;
  infra::pg::Connection::Pipeline writes_;
  std::size_t queued_loads_ = 0;
  bool begun_ = false;
  bool committed_ = false;
};

}  // namespace shopcqrs::adapters::pg_read::projection_support
