#pragma once

#include <libpq-fe.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace shopcqrs::infra::pg {

// A server-reported error, with its SQLSTATE and (for constraint violations) the constraint.
class PgError : public std::runtime_error {
 public:
  PgError(std::string message, std::string sqlstate, std::string constraint)
      : std::runtime_error(std::move(message)),
        sqlstate_(std::move(sqlstate)),
        constraint_(std::move(constraint)) {}
  const std::string& sqlstate() const { return sqlstate_; }
  const std::string& constraint() const { return constraint_; }
  bool IsUniqueViolation() const { return sqlstate_ == "23505"; }
  // Serialization failure or deadlock: retrying the whole transaction may succeed.
  bool IsRetryable() const { return sqlstate_ == "40001" || sqlstate_ == "40P01"; }

 private:
  std::string sqlstate_;
  std::string constraint_;
};

// The connection itself failed (server gone, network), or none could be had: the connection
// must be discarded. The port adapters tell the application (app::StoreUnavailable); this client
// knows nothing of it.
class ConnectionLost : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Text-format statement parameters.
class Params {
 public:
  Params& Add(std::string_view value) {
    values_.emplace_back(value);
    null_.push_back(false);
    return *this;
  }
  Params& Add(const char* value) { return Add(std::string_view(value)); }
  Params& Add(const std::string& value) { return Add(std::string_view(value)); }
  Params& Add(std::int64_t value) { return Add(std::string_view(std::to_string(value))); }
  Params& Add(int value) { return Add(static_cast<std::int64_t>(value)); }
  Params& AddNull() {
    values_.emplace_back();
    null_.push_back(true);
    return *this;
  }
  template <class T>
  Params& Add(const std::optional<T>& value) {
    return value ? Add(*value) : AddNull();
  }
  std::size_t size() const { return values_.size(); }
  // Pointers stay valid while this object lives and is not modified.
  std::vector<const char*> Pointers() const;

 private:
  std::vector<std::string> values_;
  std::vector<bool> null_;
};

// Text form of a PostgreSQL array whose elements are quoted (any text is safe inside).
template <class Range, class Fn>
inline std::string ArrayLiteral(const Range& range, Fn&& element) {
  std::string out = "{";
  bool first = true;
  for (const auto& item : range) {
    if (!first) out.push_back(',');
    first = false;
    out.push_back('"');
    for (char c : std::string(element(item))) {
      if (c == '"' || c == '\\') out.push_back('\\');
      out.push_back(c);
    }
    out.push_back('"');
  }
  out.push_back('}');
  return out;
}
inline std::string ArrayLiteral(const std::vector<std::string>& items) {
  return ArrayLiteral(items, [](const std::string& item) -> const std::string& { return item; });
}

// An owned PGresult with text accessors.
class Result {
 public:
  Result() = default;
  explicit Result(PGresult* result) : result_(result, &PQclear) {}
  int rows() const { return result_ ? PQntuples(result_.get()) : 0; }
  int columns() const { return result_ ? PQnfields(result_.get()) : 0; }
  bool IsNull(int row, int col) const { return PQgetisnull(result_.get(), row, col) != 0; }
  std::string_view Text(int row, int col) const {
    return {PQgetvalue(result_.get(), row, col),
            static_cast<std::size_t>(PQgetlength(result_.get(), row, col))};
  }
  std::string String(int row, int col) const { return std::string(Text(row, col)); }
  std::optional<std::string> OptString(int row, int col) const {
    if (IsNull(row, col)) return std::nullopt;
    return String(row, col);
  }
  std::int64_t Int64(int row, int col) const;
  std::optional<std::int64_t> OptInt64(int row, int col) const {
    if (IsNull(row, col)) return std::nullopt;
    return Int64(row, col);
  }
  bool Bool(int row, int col) const { return Text(row, col) == "t"; }
  // Rows changed by an INSERT/UPDATE/DELETE.
  std::int64_t AffectedRows() const;

 private:
  std::shared_ptr<PGresult> result_;
};

// A prepared statement known by name; its SQL is prepared on every new connection.
struct Statement {
  const char* name;
  const char* sql;
};

// A notification received on a LISTENed channel.
struct Notification {
  std::string channel;
  std::string payload;
};

// Session settings sent with the connection request itself (libpq `application_name` and
// `options`), so every session a connection opens -- first or after a reconnect -- has them
// before its first statement. Values must not contain spaces.
struct SessionSettings {
  std::string application_name;
  std::vector<std::pair<std::string, std::string>> settings;  // e.g. {"work_mem", "64MB"}
  // libpq `replication`: "database" opens a logical walsender session (replication commands
  // and simple-protocol SQL only; see ReplicationStream). Empty: an ordinary session.
  std::string replication;
};

// The PgError a failed result reports, its message prefixed with `what`.
PgError ErrorOf(const PGresult* result, std::string_view what);
// Whether a failed result means the session is gone: class 08 (connection exception) and
// 57P01-57P03 (admin shutdown, crash shutdown, cannot connect now).
bool EndsTheSession(const PGresult* result);

// One libpq connection. Not thread-safe: one user at a time (see Pool).
class Connection {
 public:
  explicit Connection(const std::string& conninfo, const SessionSettings& session = {});
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Runs SQL text without parameters (may hold several statements); answers the last result.
  Result Exec(std::string_view sql);
  // Runs SQL text with parameters (one statement).
  Result Exec(std::string_view sql, const Params& params);
  void Prepare(const Statement& statement);
  void PrepareAll(const std::vector<Statement>& statements);
  Result ExecPrepared(const Statement& statement, const Params& params);
  // COPY ... FROM STDIN with `data` in COPY's text format (outside a pipeline).
  void CopyIn(std::string_view sql, std::string_view data);

  // Pipeline mode: every queued statement is sent at once and all results are read after a
  // single sync, so a whole batch costs one network round trip. On the first failing
  // statement the rest are skipped by the server; Run then throws that statement's PgError
  // (after draining), leaving an explicit transaction in the failed state for the caller
  // to roll back.
  class Pipeline {
   public:
    explicit Pipeline(Connection& connection) : connection_(connection) {}
    Pipeline& Add(const Statement& statement, Params params = {});
    Pipeline& AddText(std::string sql);  // unprepared, no parameters
    // Queues a statement ahead of everything not yet sent.
    Pipeline& AddFirst(const Statement& statement, Params params = {});
    // Queues `other`'s statements, in their order, ahead of everything not yet sent.
    Pipeline& Prepend(Pipeline&& other);
    std::size_t size() const { return items_.size(); }
    bool empty() const { return items_.empty(); }
    std::vector<Result> Run();

   private:
    struct Item {
      const Statement* statement = nullptr;
      std::string sql;
      Params params;
    };
    Connection& connection_;
    std::vector<Item> items_;
  };

  // `name` quoted as an SQL identifier (PQescapeIdentifier).
  std::string QuoteIdentifier(std::string_view name);
  // LISTEN on `channel` (quoted as an identifier).
  void Listen(std::string_view channel);
  // The notifications received so far -- while other statements ran, or now -- and, when there
  // are none, any that arrive within `timeout` (0: do not wait). Throws ConnectionLost.
  std::vector<Notification> WaitForNotifications(std::chrono::milliseconds timeout);

  bool InTransaction() const;
  bool InFailedTransaction() const;
  bool IsBroken() const;  // the session is gone (or a ConnectionLost was thrown); discard it
  PGconn* raw() { return conn_; }

 private:
  Result Check(PGresult* result, std::string_view what);
  [[noreturn]] void ThrowLost(std::string_view what);

  PGconn* conn_ = nullptr;
  bool lost_ = false;  // set by ThrowLost: never reuse a session that reported its end
};

// A connection that opens itself on first use and again after it broke, each new session with
// the same settings (sent with the connection request), LISTENs and prepared statements. Not
// thread-safe, like Connection.
class ReconnectingConnection {
 public:
  struct Options {
    std::string conninfo;
    SessionSettings session;
    std::vector<Statement> statements;  // prepared on every new session
    std::vector<std::string> listen;    // channels LISTENed on every new session
    // Anything else a new session needs (runs last); a throw drops the new session.
    std::function<void(Connection&)> on_connect;
  };
  explicit ReconnectingConnection(Options options);

  // The open connection, opened first when there is none or it broke. Throws ConnectionLost
  // when it cannot connect.
  Connection& Get();
  // The open connection without opening one: nullptr when there is none or it broke (then it
  // is dropped).
  Connection* IfOpen();
  // Drops the connection; the next Get opens a new session.
  void Reset() { connection_.reset(); }
  // Sessions opened so far: a caller that caches something per session compares it.
  std::uint64_t Sessions() const { return sessions_; }
  const Options& options() const { return options_; }

 private:
  Options options_;
  std::unique_ptr<Connection> connection_;
  std::uint64_t sessions_ = 0;
};

}  // namespace shopcqrs::infra::pg
