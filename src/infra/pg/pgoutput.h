#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

// A decoder of the messages of PostgreSQL's built-in logical decoding output plugin `pgoutput`,
// protocol version 1 (PostgreSQL 10 and later; the "Logical Replication Message Formats" chapter
// of the protocol documentation): the payload of one XLogData message of a logical replication
// stream (see replication_stream.h) is one such message. Integers are big-endian; strings are
// NUL-terminated. Protocol version 1 has no streamed transactions, so no message carries an xid
// of its own and a transaction's changes come between its Begin and its Commit, sent when it
// commits.
//
// Input is untrusted: any message that is truncated, too long, or malformed throws DecodeError;
// nothing reads outside the given bytes.
namespace shopcqrs::infra::pg::pgoutput {

// An LSN (XLogRecPtr): a byte position in the write-ahead log.
using Lsn = std::uint64_t;
// Microseconds since 2000-01-01 00:00:00 UTC (PostgreSQL's TimestampTz).
using PgTimestamp = std::int64_t;
// Milliseconds between 1970-01-01 and 2000-01-01.
inline constexpr std::int64_t kPgEpochUnixMs = 946'684'800'000;

class DecodeError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// 'B': the start of a transaction.
struct Begin {
  Lsn final_lsn = 0;  // the LSN of its commit record
  PgTimestamp commit_time = 0;
  std::uint32_t xid = 0;
};

// 'C': the end of a transaction.
struct Commit {
  std::uint8_t flags = 0;  // currently unused (0)
  Lsn commit_lsn = 0;      // the LSN of its commit record
  Lsn end_lsn = 0;         // the end of its commit record: every later commit is at or after it
  PgTimestamp commit_time = 0;
};

// 'O': the transaction came from another origin (replication of a replica).
struct Origin {
  Lsn commit_lsn = 0;  // on the origin server
  std::string name;
};

struct Column {
  std::uint8_t flags = 0;  // 1: part of the replica identity (key)
  std::string name;
  std::uint32_t type_oid = 0;
  std::int32_t type_modifier = 0;
};

// 'R': a table's description, sent before the first change of it in a session and again
// after its definition changed. Changes name their table by `id` (its OID).
struct Relation {
  std::uint32_t id = 0;
  std::string namespace_name;  // "pg_catalog" for the empty string the server sends for it
  std::string name;
  std::uint8_t replica_identity = 0;  // pg_class.relreplident: 'd', 'n', 'f' or 'i'
  std::vector<Column> columns;
};

// 'Y': a data type's name.
struct Type {
  std::uint32_t id = 0;
  std::string namespace_name;
  std::string name;
};

// One column of a tuple.
struct Value {
  enum class Kind : char { kNull = 'n', kUnchanged = 'u', kText = 't', kBinary = 'b' };
  Kind kind = Kind::kNull;
  std::string data;  // text (or binary) form; empty for null and unchanged (TOASTed) values
};

// TupleData: one value per column of the relation, in its column order.
struct Tuple {
  std::vector<Value> values;
};

// 'I'
struct Insert {
  std::uint32_t relation_id = 0;
  Tuple tuple;  // the new row ('N')
};

// 'U'
struct Update {
  std::uint32_t relation_id = 0;
  char old_kind = 0;  // 'K' (old key), 'O' (old row) or 0 (none sent)
  std::optional<Tuple> old_tuple;
  Tuple new_tuple;
};

// 'D'
struct Delete {
  std::uint32_t relation_id = 0;
  char old_kind = 'K';  // 'K' (old key) or 'O' (old row)
  Tuple old_tuple;
};

// 'T'
struct Truncate {
  std::uint8_t options = 0;  // 1: CASCADE, 2: RESTART IDENTITY
  std::vector<std::uint32_t> relation_ids;
};

// 'M': a logical decoding message (pg_logical_emit_message), sent only with `messages 'true'`.
struct Message {
  std::uint8_t flags = 0;  // 1: transactional
  Lsn lsn = 0;
  std::string prefix;
  std::string content;
};

using Decoded =
    std::variant<Begin, Commit, Origin, Relation, Type, Insert, Update, Delete, Truncate, Message>;

// Decodes one pgoutput message (protocol version 1). Throws DecodeError for an empty,
// truncated, over-long or unknown message (including the streaming and two-phase messages of
// later protocol versions, which a version 1 stream never carries).
Decoded Decode(std::string_view payload);

}  // namespace shopcqrs::infra::pg::pgoutput
