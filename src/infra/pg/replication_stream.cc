#include "infra/pg/replication_stream.h"

#include <poll.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <stdexcept>

#include <fmt/format.h>

namespace shopcqrs::infra::pg {

namespace {

std::uint64_t BigEndian(const char* data, int bytes) {
  std::uint64_t value = 0;
  for (int i = 0; i < bytes; ++i) value = value << 8 | static_cast<std::uint8_t>(data[i]);
  return value;
}

void PutBigEndian(std::string& out, std::uint64_t value) {
  for (int shift = 56; shift >= 0; shift -= 8) {
    out.push_back(static_cast<char>((value >> shift) & 0xff));
  }
}

// A string constant of a replication command ('...' with quotes doubled).
std::string QuoteLiteral(std::string_view value) {
  std::string out = "'";
  for (char c : value) {
    if (c == '\'') out.push_back('\'');
    out.push_back(c);
  }
  out.push_back('\'');
  return out;
}

}  // namespace

std::string FormatLsn(Lsn lsn) {
  return fmt::format("{:X}/{:X}", static_cast<std::uint32_t>(lsn >> 32),
                     static_cast<std::uint32_t>(lsn));
}

Lsn ParseLsn(std::string_view text) {
  const auto slash = text.find('/');
  auto half = [&](std::string_view part) {
    std::uint32_t value = 0;
    auto [ptr, ec] = std::from_chars(part.data(), part.data() + part.size(), value, 16);
    if (part.empty() || part.size() > 8 || ec != std::errc() || ptr != part.data() + part.size()) {
      throw std::invalid_argument(fmt::format("not an LSN: '{}'", text));
    }
    return value;
  };
  if (slash == std::string_view::npos) {
    throw std::invalid_argument(fmt::format("not an LSN: '{}'", text));
  }
  return static_cast<Lsn>(half(text.substr(0, slash))) << 32 | half(text.substr(slash + 1));
}

pgoutput::PgTimestamp PgNow() {
  const auto since_unix = std::chrono::duration_cast<std::chrono::microseconds>(
      std::chrono::system_clock::now().time_since_epoch());
  return since_unix.count() - pgoutput::kPgEpochUnixMs * 1000;
}

bool IsSimpleIdentifier(std::string_view name) {
  if (name.empty() || name.size() > 63) return false;
  if (!(std::islower(static_cast<unsigned char>(name[0])) || name[0] == '_')) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::islower(static_cast<unsigned char>(c)) ||
           std::isdigit(static_cast<unsigned char>(c)) || c == '_';
  });
}

ReplicationStream::ReplicationStream(Options options) : options_(std::move(options)) {
  SessionSettings session = options_.session;
  session.replication = "database";
  connection_ = std::make_unique<Connection>(options_.conninfo, session);
}

ReplicationStream::~ReplicationStream() = default;

void ReplicationStream::ThrowLost(std::string_view what) {
  lost_ = true;
  throw ConnectionLost(fmt::format("replication stream: {}: {}", what,
                                   connection_ ? PQerrorMessage(connection_->raw()) : ""));
}

Result ReplicationStream::Exec(std::string_view sql) {
  if (streaming_) throw std::logic_error("replication stream: no commands while streaming");
  try {
    return connection_->Exec(sql);
  } catch (const ConnectionLost&) {
    lost_ = true;
    throw;
  }
}

SystemIdentity ReplicationStream::IdentifySystem() {
  auto result = Exec("IDENTIFY_SYSTEM");
  if (result.rows() != 1) throw std::runtime_error("IDENTIFY_SYSTEM answered no row");
  SystemIdentity identity;
  identity.system_id = result.String(0, 0);
  identity.timeline = static_cast<int>(result.Int64(0, 1));
  identity.xlogpos = ParseLsn(result.Text(0, 2));
  identity.dbname = result.OptString(0, 3).value_or("");
  return identity;
}

void ReplicationStream::StartLogical(
    std::string_view slot, Lsn start, Lsn confirmed,
    const std::vector<std::pair<std::string, std::string>>& options) {
  if (streaming_) throw std::logic_error("replication stream: already streaming");
  if (!IsSimpleIdentifier(slot)) {
    throw std::invalid_argument(
        fmt::format("replication slot name '{}' is not [a-z_][a-z0-9_]*", slot));
  }
  std::string sql = fmt::format("START_REPLICATION SLOT {} LOGICAL {}", slot, FormatLsn(start));
  if (!options.empty()) {
    sql += " (";
    for (std::size_t i = 0; i < options.size(); ++i) {
      if (!IsSimpleIdentifier(options[i].first)) {
        throw std::invalid_argument(
            fmt::format("plugin option '{}' is not an identifier", options[i].first));
      }
      if (i) sql += ", ";
      sql += fmt::format("{} {}", options[i].first, QuoteLiteral(options[i].second));
    }
    sql += ")";
  }
  PGconn* conn = connection_->raw();
  PGresult* raw = PQexec(conn, sql.c_str());
  if (!raw) ThrowLost("START_REPLICATION failed");
  Result result(raw);  // owns it
  if (PQresultStatus(raw) != PGRES_COPY_BOTH) {
    if (PQstatus(conn) != CONNECTION_OK || EndsTheSession(raw)) ThrowLost("START_REPLICATION");
    throw ErrorOf(raw, "START_REPLICATION");
  }
  streaming_ = true;
  received_ = std::max(received_, start);
  confirmed_ = confirmed;
  SendStatus();
}

StreamMessage ReplicationStream::Parse(const char* data, int length) {
  if (length < 1) throw std::runtime_error("replication stream: empty CopyData message");
  switch (data[0]) {
    case 'w': {
      constexpr int kHeader = 1 + 8 + 8 + 8;
      if (length < kHeader) {
        throw std::runtime_error(fmt::format(
            "replication stream: XLogData of {} bytes, needs at least {}", length, kHeader));
      }
      XLogData m;
      m.wal_start = BigEndian(data + 1, 8);
      m.wal_end = BigEndian(data + 9, 8);
      m.send_time = static_cast<std::int64_t>(BigEndian(data + 17, 8));
      m.payload.assign(data + kHeader, static_cast<std::size_t>(length - kHeader));
      received_ = std::max({received_, m.wal_start, m.wal_end});
      return m;
    }
    case 'k': {
      constexpr int kSize = 1 + 8 + 8 + 1;
      if (length != kSize) {
        throw std::runtime_error(
            fmt::format("replication stream: keepalive of {} bytes, expected {}", length, kSize));
      }
      Keepalive m;
      m.wal_end = BigEndian(data + 1, 8);
      m.send_time = static_cast<std::int64_t>(BigEndian(data + 9, 8));
      m.reply_requested = data[17] != 0;
      received_ = std::max(received_, m.wal_end);
      return m;
    }
    default:
      throw std::runtime_error(fmt::format("replication stream: unknown message type 0x{:02x}",
                                           static_cast<unsigned char>(data[0])));
  }
}

void ReplicationStream::ThrowStreamEnd() {
  PGconn* conn = connection_->raw();
  streaming_ = false;
  lost_ = true;  // COPY BOTH ended: this session streams no more
  PGresult* raw = PQgetResult(conn);
  if (!raw) ThrowLost("the server ended the stream");
  Result result(raw);
  while (PGresult* extra = PQgetResult(conn)) PQclear(extra);
  if (PQresultStatus(raw) == PGRES_FATAL_ERROR && !EndsTheSession(raw) &&
      PQstatus(conn) == CONNECTION_OK) {
    const PgError error = ErrorOf(raw, "replication stream ended");
    throw ReplicationError(error.what(), error.sqlstate(), error.constraint());
  }
  if (PQresultStatus(raw) == PGRES_FATAL_ERROR) {
    throw ConnectionLost(fmt::format("replication stream: {}", PQresultErrorMessage(raw)));
  }
  ThrowLost("the server ended the stream");
}

std::optional<StreamMessage> ReplicationStream::Read(std::chrono::milliseconds timeout) {
  if (!streaming_) throw std::logic_error("replication stream: not streaming");
  if (lost_) throw ConnectionLost("replication stream: the session was lost");
  PGconn* conn = connection_->raw();
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  bool consumed = false;  // PQconsumeInput ran since PQgetCopyData last found nothing
  while (true) {
    const auto now = std::chrono::steady_clock::now();
    if (now - last_status_ >= options_.status_interval) SendStatus();
    char* buffer = nullptr;
    const int n = PQgetCopyData(conn, &buffer, /*async=*/1);
    if (n > 0) {
      std::unique_ptr<char, decltype(&PQfreemem)> owned(buffer, &PQfreemem);
      StreamMessage message = Parse(buffer, n);
      if (auto* keepalive = std::get_if<Keepalive>(&message);
          keepalive && keepalive->reply_requested) {
        SendStatus();
      }
      return message;
    }
    if (n == -1) ThrowStreamEnd();
    if (n < -1) ThrowLost("reading the stream failed");
    // Nothing complete in libpq's buffer: take what the socket holds (without blocking) first.
    if (!consumed) {
      if (PQconsumeInput(conn) != 1) ThrowLost("reading the stream failed");
      consumed = true;
      continue;
    }
    consumed = false;
    // Nothing complete yet: wait for the socket (or the next status update), then read it.
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now);
    if (left.count() <= 0) return std::nullopt;
    const auto until_status = std::chrono::duration_cast<std::chrono::milliseconds>(
        last_status_ + options_.status_interval - now);
    const auto wait = std::max<std::int64_t>(0, std::min(left, until_status).count()) + 1;
    pollfd fd{PQsocket(conn), POLLIN, 0};
    if (fd.fd < 0) ThrowLost("the connection has no socket");
    const int ready = ::poll(&fd, 1, static_cast<int>(wait));
    if (ready < 0 && errno != EINTR) ThrowLost("poll failed");
    if (ready > 0) {
      if (PQconsumeInput(conn) != 1) ThrowLost("reading the stream failed");
      consumed = true;
    }
    if (ready == 0 && std::chrono::steady_clock::now() >= deadline) return std::nullopt;
  }
}

void ReplicationStream::Confirm(Lsn flushed) {
  if (flushed <= confirmed_) return;
  confirmed_ = flushed;
  SendStatus();
}

void ReplicationStream::SendStatus(bool reply_requested) {
  if (!streaming_ || lost_) return;
  std::string message;
  message.reserve(1 + 8 * 4 + 1);
  message.push_back('r');
  PutBigEndian(message, std::max(received_, confirmed_));  // written
  PutBigEndian(message, confirmed_);                       // flushed
  PutBigEndian(message, confirmed_);                       // applied
  PutBigEndian(message, static_cast<std::uint64_t>(PgNow()));
  message.push_back(reply_requested ? 1 : 0);
  PGconn* conn = connection_->raw();
  if (PQputCopyData(conn, message.data(), static_cast<int>(message.size())) != 1) {
    ThrowLost("sending a standby status update failed");
  }
  if (PQflush(conn) != 0) ThrowLost("flushing a standby status update failed");
  last_status_ = std::chrono::steady_clock::now();
}

}  // namespace shopcqrs::infra::pg
