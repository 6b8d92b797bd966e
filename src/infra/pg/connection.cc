#include "infra/pg/connection.h"

#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <stdexcept>

#include <fmt/format.h>

namespace shopcqrs::infra::pg {

namespace {

std::string FieldOf(const PGresult* result, int field) {
  const char* value = PQresultErrorField(result, field);
  return value ? value : "";
}

bool IsSuccess(ExecStatusType status) {
  return status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK || status == PGRES_PIPELINE_SYNC;
}

}  // namespace

PgError ErrorOf(const PGresult* result, std::string_view what) {
  std::string message = PQresultErrorMessage(result);
  while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) {
    message.pop_back();
  }
  return PgError(fmt::format("{}: {}", what, message), FieldOf(result, PG_DIAG_SQLSTATE),
                 FieldOf(result, PG_DIAG_CONSTRAINT_NAME));
}

// Errors after which the session is gone, whatever PQstatus says yet: class 08 (connection
// exception) and 57P01-57P03 (admin shutdown, crash shutdown -- e.g. "terminating connection due
// to unexpected postmaster exit" -- and cannot connect now). The server sends them as FATAL and
// closes the socket; libpq may report the error result before it has seen the close.
bool EndsTheSession(const PGresult* result) {
  const std::string code = FieldOf(result, PG_DIAG_SQLSTATE);
  return code.starts_with("08") || code == "57P01" || code == "57P02" || code == "57P03";
}

std::vector<const char*> Params::Pointers() const {
  std::vector<const char*> pointers(values_.size());
  for (std::size_t i = 0; i < values_.size(); ++i) {
    pointers[i] = null_[i] ? nullptr : values_[i].c_str();
  }
  return pointers;
}

std::int64_t Result::Int64(int row, int col) const {
  auto text = Text(row, col);
  std::int64_t value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || ptr != text.data() + text.size()) {
    throw std::runtime_error(fmt::format("column {} is not an integer: '{}'", col, text));
  }
  return value;
}

std::int64_t Result::AffectedRows() const {
  const char* text = PQcmdTuples(result_.get());
  return text && *text ? std::stoll(text) : 0;
}

Connection::Connection(const std::string& conninfo, const SessionSettings& session) {
  std::string options;
  for (const auto& [name, value] : session.settings) {
    if (name.find_first_of(" \t=") != std::string::npos ||
        value.find_first_of(" \t") != std::string::npos) {
      throw std::invalid_argument(fmt::format("session setting {}={} has a space", name, value));
    }
    if (!options.empty()) options.push_back(' ');
    options += fmt::format("-c {}={}", name, value);
  }
  // `dbname` is expanded (a URI or key=value conninfo); the keywords after it override it.
  std::vector<const char*> keys{"dbname"};
  std::vector<const char*> values{conninfo.c_str()};
  if (!session.application_name.empty()) {
    keys.push_back("application_name");
    values.push_back(session.application_name.c_str());
  }
  if (!options.empty()) {
    keys.push_back("options");
    values.push_back(options.c_str());
  }
  if (!session.replication.empty()) {
    keys.push_back("replication");
    values.push_back(session.replication.c_str());
  }
  keys.push_back(nullptr);
  values.push_back(nullptr);
  conn_ = PQconnectdbParams(keys.data(), values.data(), /*expand_dbname=*/1);
  if (PQstatus(conn_) != CONNECTION_OK) {
    std::string message = PQerrorMessage(conn_);
    PQfinish(conn_);
    conn_ = nullptr;
    throw ConnectionLost("cannot connect to PostgreSQL: " + message);
  }
}

Connection::~Connection() {
  if (conn_) PQfinish(conn_);
}

void Connection::ThrowLost(std::string_view what) {
  lost_ = true;
  throw ConnectionLost(fmt::format("{}: {}", what, PQerrorMessage(conn_)));
}

Result Connection::Check(PGresult* raw, std::string_view what) {
  Result result(raw);
  if (!raw) ThrowLost(what);
  const auto status = PQresultStatus(raw);
  if (IsSuccess(status)) return result;
  if (IsBroken() || EndsTheSession(raw)) ThrowLost(what);
  throw ErrorOf(raw, what);
}

Result Connection::Exec(std::string_view sql) {
  return Check(PQexec(conn_, std::string(sql).c_str()), "query failed");
}

Result Connection::Exec(std::string_view sql, const Params& params) {
  auto pointers = params.Pointers();
  return Check(PQexecParams(conn_, std::string(sql).c_str(), static_cast<int>(pointers.size()),
                            nullptr, pointers.data(), nullptr, nullptr, 0),
               "query failed");
}

void Connection::CopyIn(std::string_view sql, std::string_view data) {
  PGresult* started = PQexec(conn_, std::string(sql).c_str());
  if (PQresultStatus(started) != PGRES_COPY_IN) {
    Check(started, "COPY failed");  // throws with the server's message
    ThrowLost("COPY did not start");
  }
  PQclear(started);
  constexpr std::size_t kChunk = 1 << 20;
  bool ok = true;
  for (std::size_t at = 0; at < data.size() && ok; at += kChunk) {
    const auto n = std::min(kChunk, data.size() - at);
    ok = PQputCopyData(conn_, data.data() + at, static_cast<int>(n)) == 1;
  }
  if (PQputCopyEnd(conn_, ok ? nullptr : "client failed to send data") != 1) {
    ThrowLost("COPY end failed");
  }
  // The COPY's own result, then the end of the command.
  PGresult* result = PQgetResult(conn_);
  Check(result, "COPY failed");
  while (PGresult* extra = PQgetResult(conn_)) PQclear(extra);
}

void Connection::Prepare(const Statement& statement) {
  Check(PQprepare(conn_, statement.name, statement.sql, 0, nullptr),
        fmt::format("prepare {}", statement.name));
}

void Connection::PrepareAll(const std::vector<Statement>& statements) {
  for (const auto& statement : statements) Prepare(statement);
}

Result Connection::ExecPrepared(const Statement& statement, const Params& params) {
  auto pointers = params.Pointers();
  return Check(PQexecPrepared(conn_, statement.name, static_cast<int>(pointers.size()),
                              pointers.data(), nullptr, nullptr, 0),
               statement.name);
}

std::string Connection::QuoteIdentifier(std::string_view name) {
  char* quoted = PQescapeIdentifier(conn_, name.data(), name.size());
  if (!quoted) throw std::invalid_argument(fmt::format("cannot quote '{}' as an identifier", name));
  std::string out(quoted);
  PQfreemem(quoted);
  return out;
}

void Connection::Listen(std::string_view channel) { Exec("LISTEN " + QuoteIdentifier(channel)); }

std::vector<Notification> Connection::WaitForNotifications(std::chrono::milliseconds timeout) {
  std::vector<Notification> out;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (PQconsumeInput(conn_) != 1) ThrowLost("connection lost while waiting for notifications");
    while (PGnotify* notify = PQnotifies(conn_)) {
      out.push_back({notify->relname ? notify->relname : "", notify->extra ? notify->extra : ""});
      PQfreemem(notify);
    }
    if (!out.empty()) return out;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return out;
    pollfd fd{PQsocket(conn_), POLLIN, 0};
    if (fd.fd < 0) ThrowLost("connection has no socket");
    if (::poll(&fd, 1, static_cast<int>(left.count())) < 0 && errno != EINTR) {
      ThrowLost("poll failed while waiting for notifications");
    }
  }
}

bool Connection::InTransaction() const {
  const auto status = PQtransactionStatus(conn_);
  return status == PQTRANS_INTRANS || status == PQTRANS_INERROR;
}

bool Connection::InFailedTransaction() const {
  return PQtransactionStatus(conn_) == PQTRANS_INERROR;
}

bool Connection::IsBroken() const {
  return lost_ || !conn_ || PQstatus(conn_) != CONNECTION_OK ||
         PQpipelineStatus(conn_) != PQ_PIPELINE_OFF;
}

Connection::Pipeline& Connection::Pipeline::Add(const Statement& statement, Params params) {
  items_.push_back(Item{&statement, {}, std::move(params)});
  return *this;
}

Connection::Pipeline& Connection::Pipeline::AddFirst(const Statement& statement, Params params) {
  items_.insert(items_.begin(), Item{&statement, {}, std::move(params)});
  return *this;
}

Connection::Pipeline& Connection::Pipeline::Prepend(Pipeline&& other) {
  items_.insert(items_.begin(), std::make_move_iterator(other.items_.begin()),
                std::make_move_iterator(other.items_.end()));
  other.items_.clear();
  return *this;
}

Connection::Pipeline& Connection::Pipeline::AddText(std::string sql) {
  items_.push_back(Item{nullptr, std::move(sql), {}});
  return *this;
}

std::vector<Result> Connection::Pipeline::Run() {
  PGconn* conn = connection_.conn_;
  if (PQenterPipelineMode(conn) != 1) connection_.ThrowLost("cannot enter pipeline mode");
  for (const auto& item : items_) {
    int sent = 0;
    if (item.statement) {
      auto pointers = item.params.Pointers();
      sent = PQsendQueryPrepared(conn, item.statement->name, static_cast<int>(pointers.size()),
                                 pointers.data(), nullptr, nullptr, 0);
    } else {
      sent = PQsendQueryParams(conn, item.sql.c_str(), 0, nullptr, nullptr, nullptr, nullptr, 0);
    }
    if (!sent) connection_.ThrowLost("pipeline send failed");
  }
  if (PQpipelineSync(conn) != 1) connection_.ThrowLost("pipeline sync failed");

  std::vector<Result> results;
  results.reserve(items_.size());
  std::optional<PgError> first_error;
  // Each statement yields its result followed by a null; the sync yields PGRES_PIPELINE_SYNC.
  for (std::size_t i = 0; i < items_.size(); ++i) {
    PGresult* raw = PQgetResult(conn);
    if (!raw) connection_.ThrowLost("pipeline lost a result");
    Result result(raw);
    const auto status = PQresultStatus(raw);
    const auto& item = items_[i];
    const char* what = item.statement ? item.statement->name : "pipeline statement";
    if (status == PGRES_FATAL_ERROR && EndsTheSession(raw)) {
      connection_.ThrowLost(what);
    } else if (status == PGRES_FATAL_ERROR && !first_error) {
      first_error = ErrorOf(raw, what);
    } else if (status != PGRES_PIPELINE_ABORTED && status != PGRES_FATAL_ERROR &&
               !IsSuccess(status)) {
      connection_.ThrowLost("unexpected pipeline result");
    }
    results.push_back(std::move(result));
    while (PGresult* extra = PQgetResult(conn)) PQclear(extra);  // the terminating null
  }
  PGresult* sync = PQgetResult(conn);
  if (!sync || PQresultStatus(sync) != PGRES_PIPELINE_SYNC) {
    if (sync) PQclear(sync);
    connection_.ThrowLost("pipeline sync missing");
  }
  PQclear(sync);
  if (PQexitPipelineMode(conn) != 1) connection_.ThrowLost("cannot leave pipeline mode");
  items_.clear();
  if (first_error) throw *first_error;
  return results;
}

ReconnectingConnection::ReconnectingConnection(Options options) : options_(std::move(options)) {}

Connection* ReconnectingConnection::IfOpen() {
  if (connection_ && connection_->IsBroken()) connection_.reset();
  return connection_.get();
}

Connection& ReconnectingConnection::Get() {
  if (connection_ && connection_->IsBroken()) connection_.reset();
  if (!connection_) {
    auto connection = std::make_unique<Connection>(options_.conninfo, options_.session);
    for (const auto& channel : options_.listen) connection->Listen(channel);
    connection->PrepareAll(options_.statements);
    if (options_.on_connect) options_.on_connect(*connection);
    connection_ = std::move(connection);
    ++sessions_;
  }
  return *connection_;
}

}  // namespace shopcqrs::infra::pg
