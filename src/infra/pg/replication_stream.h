#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "infra/pg/connection.h"
#include "infra/pg/pgoutput.h"

// A logical replication session over libpq's streaming replication protocol (the "Streaming
// Replication Protocol" and "Logical Streaming Replication Protocol" chapters of the PostgreSQL
// documentation): a connection with `replication=database`, IDENTIFY_SYSTEM, and
//   START_REPLICATION SLOT <slot> LOGICAL <lsn> (<plugin options>)
// after which the server streams CopyData messages (CopyBoth mode):
//   XLogData          'w' Int64 walStart, Int64 walEnd, Int64 sendTime, Byte[n] payload
//   Primary keepalive 'k' Int64 walEnd, Int64 sendTime, Byte1 replyRequested
// and the client sends
//   Standby status    'r' Int64 written, Int64 flushed, Int64 applied, Int64 clock, Byte1 reply
// For a logical slot the server takes `flushed` as the slot's confirmed_flush_lsn: it may
// release WAL before it, and a later START_REPLICATION resumes from it. So `flushed` must be
// only what the caller has durably consumed (Confirm); it never moves backwards here.
namespace shopcqrs::infra::pg {

using Lsn = pgoutput::Lsn;

// "X/Y" (hex halves), as PostgreSQL writes pg_lsn.
std::string FormatLsn(Lsn lsn);
// Parses "X/Y"; throws std::invalid_argument on anything else.
Lsn ParseLsn(std::string_view text);

// The now of PostgreSQL's clock format (microseconds since 2000-01-01 UTC).
pgoutput::PgTimestamp PgNow();

// Whether `name` is [a-z_][a-z0-9_]* of at most 63 bytes: a slot, publication or option name
// that needs no quoting in a replication command or in SQL.
bool IsSimpleIdentifier(std::string_view name);

struct SystemIdentity {
  std::string system_id;
  int timeline = 0;
  Lsn xlogpos = 0;  // the current WAL flush location
  std::string dbname;
};

// 'w'
struct XLogData {
  Lsn wal_start = 0;
  Lsn wal_end = 0;
  pgoutput::PgTimestamp send_time = 0;
  std::string payload;  // one output-plugin message (pgoutput: see pgoutput.h)
};

// 'k' (answered by the stream itself when a reply is requested)
struct Keepalive {
  Lsn wal_end = 0;
  pgoutput::PgTimestamp send_time = 0;
  bool reply_requested = false;
};

using StreamMessage = std::variant<XLogData, Keepalive>;

// The stream ended in an error the server reported (e.g. the slot is gone or can no longer
// be read); the session is unusable afterwards.
class ReplicationError : public PgError {
 public:
  using PgError::PgError;
};

// One walsender session. Not thread-safe. Throws ConnectionLost when the session is lost (and is
// then unusable), PgError for an error answer to a command, ReplicationError for an error that
// ended the stream, std::runtime_error for a malformed message.
class ReplicationStream {
 public:
  struct Options {
    std::string conninfo;  // an ordinary conninfo; `replication=database` is added
    SessionSettings session;
    // A standby status update is sent at least this often while Read runs (the server drops a
    // client silent for wal_sender_timeout, 60 s by default).
    std::chrono::milliseconds status_interval{10'000};
  };
  explicit ReplicationStream(Options options);  // connects; throws ConnectionLost
  ~ReplicationStream();
  ReplicationStream(const ReplicationStream&) = delete;
  ReplicationStream& operator=(const ReplicationStream&) = delete;

  SystemIdentity IdentifySystem();
  // Runs a replication command or simple-protocol SQL (allowed before streaming starts).
  Result Exec(std::string_view sql);

  // START_REPLICATION SLOT `slot` LOGICAL `start` (options...). The server streams from
  // max(start, the slot's confirmed_flush_lsn). `confirmed` is what counts as flushed from now
  // on (at least the slot's confirmed_flush_lsn: a logical slot in PostgreSQL 15 would take a
  // smaller one). `slot` and option names must be simple identifiers; option values are
  // quoted here.
  void StartLogical(std::string_view slot, Lsn start, Lsn confirmed,
                    const std::vector<std::pair<std::string, std::string>>& options);

  // The next message, waiting up to `timeout` (0: only what has arrived); nullopt when none
  // came. A keepalive that asks for a reply is answered before it is returned, and a status
  // update is sent whenever status_interval has passed.
  std::optional<StreamMessage> Read(std::chrono::milliseconds timeout);

  // Raises the flushed (confirmed) LSN and sends a standby status update at once.
  void Confirm(Lsn flushed);
  // Sends a standby status update: written = the end of what was received, flushed = applied =
  // the confirmed LSN.
  void SendStatus(bool reply_requested = false);

  Lsn received() const { return received_; }
  Lsn confirmed() const { return confirmed_; }
  bool streaming() const { return streaming_; }
  bool IsBroken() const { return lost_ || !connection_ || connection_->IsBroken(); }

 private:
  [[noreturn]] void ThrowLost(std::string_view what);
  // After PQgetCopyData answered -1: the stream's end, with the server's error if any.
  [[noreturn]] void ThrowStreamEnd();
  StreamMessage Parse(const char* data, int length);

  Options options_;
  std::unique_ptr<Connection> connection_;
  bool streaming_ = false;
  bool lost_ = false;
  Lsn received_ = 0;
  Lsn confirmed_ = 0;
  std::chrono::steady_clock::time_point last_status_{};
};

}  // namespace shopcqrs::infra::pg
