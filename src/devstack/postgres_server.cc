#include "devstack/postgres_server.h"

#include <grp.h>
#include <libpq-fe.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include "infra/pg/connection.h"

namespace shopcqrs::devstack {
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

constexpr const char* kServerUser = "postgres";
constexpr const char* kSettingsFile = "shopcqrs.conf";
constexpr const char* kLogFile = "server.log";
constexpr std::size_t kLogTailLines = 30;
constexpr std::uintmax_t kMaxLogBytes = 16 * 1024 * 1024;  // rotated at start beyond this
// sun_path is 108 bytes including the terminating NUL.
constexpr std::size_t kMaxSocketPath = 107;

std::string ErrnoText(int err) { return std::strerror(err); }

std::string Trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  std::size_t start = 0;
  while (start < s.size() && std::isspace(static_cast<unsigned char>(s[start]))) ++start;
  return s.substr(start);
}

bool HasServerBinaries(const fs::path& dir) {
  return !dir.empty() && ::access((dir / "postgres").c_str(), X_OK) == 0 &&
         ::access((dir / "initdb").c_str(), X_OK) == 0;
}

std::optional<std::string> ReadFirstLine(const fs::path& file) {
  std::ifstream in(file);
  std::string line;
  if (!in || !std::getline(in, line)) return std::nullopt;
  return Trim(line);
}

std::optional<int> ParseInt(std::string_view text) {
  int value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || ptr != text.data() + text.size()) return std::nullopt;
  return value;
}

// The `port = N` line of the settings file written by the previous run.
std::optional<int> RecordedPort(const fs::path& data_dir) {
  std::ifstream in(data_dir / kSettingsFile);
  std::string line;
  while (std::getline(in, line)) {
    line = Trim(line);
    if (!line.starts_with("port")) continue;
    auto eq = line.find('=');
    if (eq == std::string::npos || Trim(line.substr(4, eq - 4)) != "") continue;
    std::string value = Trim(line.substr(eq + 1));
    if (value.size() >= 2 && value.front() == '\'' && value.back() == '\'') {
      value = value.substr(1, value.size() - 2);
    }
    auto port = ParseInt(value);
    if (port && *port > 0 && *port < 65536) return port;
  }
  return std::nullopt;
}

// A postgresql.conf string literal.
std::string QuoteGucValue(std::string_view value) {
  std::string out = "'";
  for (char c : value) {
    if (c == '\'') {
      out += "''";
    } else if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n' || c == '\r') {
      throw std::runtime_error("PostgreSQL setting values must not contain line breaks");
    } else {
      out += c;
    }
  }
  return out + "'";
}

bool IsValidGucName(std::string_view name) {
  if (name.empty()) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.';
  });
}

void WriteFileAtomically(const fs::path& file, const std::string& content) {
  fs::path tmp = file;
  tmp += ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << content;
    out.flush();
    if (!out) throw std::runtime_error(fmt::format("cannot write {}", tmp.string()));
  }
  fs::rename(tmp, file);
}

std::uintmax_t FileSize(const fs::path& file) {
  std::error_code ec;
  auto size = fs::file_size(file, ec);
  return ec ? 0 : size;
}

// The `postgres` system user the server runs as when this process is root (LookupUser).
UserInfo LookupServerUser() {
  try {
    return LookupUser(kServerUser);
  } catch (const std::exception& error) {
    throw std::runtime_error(fmt::format(
        "running as root, so PostgreSQL must run as the '{}' system user, which cannot be used "
        "({}; install postgresql-15 or create the user)",
        kServerUser, error.what()));
  }
}

void CheckTraversable(const fs::path& data_dir, const UserInfo& user) {
  for (fs::path dir = data_dir.parent_path();; dir = dir.parent_path()) {
    struct stat st {};
    if (::stat(dir.c_str(), &st) != 0) {
      throw std::runtime_error(fmt::format("cannot stat {}: {}", dir.string(), ErrnoText(errno)));
    }
    bool ok;
    if (st.st_uid == user.uid) {
      ok = st.st_mode & S_IXUSR;
    } else if (std::find(user.groups.begin(), user.groups.end(), st.st_gid) != user.groups.end()) {
      ok = st.st_mode & S_IXGRP;
    } else {
      ok = st.st_mode & S_IXOTH;
    }
    if (!ok) {
      throw std::runtime_error(fmt::format(
          "the '{}' user cannot traverse {} (mode {:o}), so it cannot reach the data "
          "directory {}; run `chmod o+x {}` or choose another data directory",
          kServerUser, dir.string(), st.st_mode & 07777, data_dir.string(), dir.string()));
    }
    if (dir == dir.root_path() || dir.empty()) break;
  }
}

void ChownTree(const fs::path& root, uid_t uid, gid_t gid) {
  auto fix = [&](const fs::path& p) {
    struct stat st {};
    if (::lstat(p.c_str(), &st) != 0) return;
    if (st.st_uid != uid || st.st_gid != gid) {
      if (::lchown(p.c_str(), uid, gid) != 0) {
        throw std::runtime_error(
            fmt::format("cannot chown {} to {}: {}", p.string(), kServerUser, ErrnoText(errno)));
      }
    }
  };
  fix(root);
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(
           root, fs::directory_options::skip_permission_denied, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    fix(it->path());
  }
}

}  // namespace

std::string QuoteConninfoValue(std::string_view value) {
  bool plain = !value.empty() && std::none_of(value.begin(), value.end(), [](char c) {
    return std::isspace(static_cast<unsigned char>(c)) || c == '\'' || c == '\\' || c == '=';
  });
  if (plain) return std::string(value);
  std::string out = "'";
  for (char c : value) {
    if (c == '\'' || c == '\\') out += '\\';
    out += c;
  }
  return out + "'";
}

fs::path FindPostgresBinDir() {
  if (const char* env = std::getenv("SHOPCQRS_PG_BINDIR"); env && *env) {
    if (!HasServerBinaries(env)) {
      throw std::runtime_error(
          fmt::format("SHOPCQRS_PG_BINDIR={} has no executable postgres and initdb", env));
    }
    return env;
  }
  const fs::path debian_default = "/usr/lib/postgresql/15/bin";
  if (HasServerBinaries(debian_default)) return debian_default;
  if (FILE* pipe = ::popen("pg_config --bindir 2>/dev/null", "r")) {
    char buffer[4096];
    std::string output;
    while (std::fgets(buffer, sizeof buffer, pipe)) output += buffer;
    ::pclose(pipe);
    if (fs::path dir = Trim(output); HasServerBinaries(dir)) return dir;
  }
  std::error_code ec;
  std::vector<std::pair<int, fs::path>> found;
  for (const auto& entry : fs::directory_iterator("/usr/lib/postgresql", ec)) {
    auto version = ParseInt(entry.path().filename().string());
    if (version && HasServerBinaries(entry.path() / "bin")) {
      found.emplace_back(*version, entry.path() / "bin");
    }
  }
  if (!found.empty()) return std::max_element(found.begin(), found.end())->second;
  throw std::runtime_error(
      "PostgreSQL server binaries (postgres, initdb) not found in /usr/lib/postgresql/15/bin "
      "or `pg_config --bindir`; install postgresql-15 or set SHOPCQRS_PG_BINDIR");
}

PostgresServer::PostgresServer(Options options)
    : SupervisedServer("PostgresServer", options, "server.log",
                       {.program = "PostgreSQL",
                        .stop_signal = SIGINT,  // fast shutdown
                        .parent_death_signal = options.stop_with_parent ? SIGINT : 0,
                        .prepare = [this](int port) { Prepare(port); },
                        .retry_reason = [](const ExitStatus&,
                                           const std::string& log) { return RetryReason(log); },
                        .recorded_port = [this] { return RecordedPort(data_dir_); },
                        .leftover_servers =
                            [this](const std::vector<pid_t>& leftovers) {
                              return LeftoverPostmaster(leftovers);
                            }}),
      options_(std::move(options)),
      run_as_user_(::geteuid() == 0 ? kServerUser : "") {
  if (options_.port < 0 || options_.port > 65535) {
    throw std::runtime_error(fmt::format("PostgresServer: invalid port {}", options_.port));
  }
}

PostgresServer::~PostgresServer() {
  try {
    Stop();
  } catch (const std::exception& e) {
    spdlog::error("[{}] stopping PostgreSQL failed: {}", options_.name, e.what());
  }
}

std::string PostgresServer::ConnectionString() const { return ConnectionString(options_.database); }

std::string PostgresServer::ConnectionString(std::string_view database) const {
  return fmt::format("host=127.0.0.1 port={} dbname={} user=postgres", Port(),
                     QuoteConninfoValue(database));
}

void PostgresServer::Start() {
  std::lock_guard lock(mutex_);
  if (started_) return;
  const auto started = std::chrono::steady_clock::now();
  InitializeLocked();
  if (FileSize(LogFile()) > kMaxLogBytes) {
    std::error_code ec;  // keep one previous log
    fs::rename(LogFile(), fs::path(LogFile()) += ".old", ec);
  }
  supervisor_.Start();
  try {
    VerifyAndCreateDatabase();
  } catch (...) {
    supervisor_.Stop();
    throw;
  }
  started_ = true;
  auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - started);
  spdlog::info("[{}] PostgreSQL ready on 127.0.0.1:{} (pid {}, data {}) in {} ms", options_.name,
               Port(), Pid(), data_dir_.string(), elapsed.count());
}

void PostgresServer::Stop() {
  std::lock_guard lock(mutex_);
  supervisor_.Stop();
  started_ = false;
}

void PostgresServer::Initialize() {
  std::lock_guard lock(mutex_);
  if (started_) return;
  InitializeLocked();
}

void PostgresServer::InitializeLocked() {
  bin_dir_ = options_.bin_dir.empty() ? FindPostgresBinDir() : options_.bin_dir;
  if (!HasServerBinaries(bin_dir_)) {
    throw std::runtime_error(fmt::format("[{}] no executable postgres and initdb in {}",
                                         options_.name, bin_dir_.string()));
  }
  PrepareDataDir();
  if (!fs::exists(data_dir_ / "PG_VERSION")) InitDb();
}

void PostgresServer::PrepareDataDir() {
  std::error_code ec;
  if (!fs::exists(data_dir_)) {
    fs::create_directories(data_dir_, ec);
    if (ec) {
      throw std::runtime_error(fmt::format("[{}] cannot create data directory {}: {}",
                                           options_.name, data_dir_.string(), ec.message()));
    }
  } else if (!fs::is_directory(data_dir_)) {
    throw std::runtime_error(fmt::format("[{}] data directory {} is not a directory", options_.name,
                                         data_dir_.string()));
  }
  data_dir_ = fs::canonical(data_dir_);  // the form /proc/<pid>/cwd shows
  // PostgreSQL refuses a data directory that is group/world accessible.
  if (::chmod(data_dir_.c_str(), 0700) != 0) {
    throw std::runtime_error(fmt::format("[{}] cannot chmod {}: {}", options_.name,
                                         data_dir_.string(), ErrnoText(errno)));
  }
  if (!run_as_user_.empty()) {
    UserInfo user = LookupServerUser();
    CheckTraversable(data_dir_, user);
    ChownTree(data_dir_, user.uid, user.gid);
  }
}

void PostgresServer::InitDb() {
  if (!fs::is_empty(data_dir_)) {
    throw std::runtime_error(fmt::format(
        "[{}] {} is not empty but has no PG_VERSION, so it is not a PostgreSQL data directory; "
        "empty it or choose another data directory",
        options_.name, data_dir_.string()));
  }
  spdlog::info("[{}] initialising PostgreSQL data directory {}", options_.name, data_dir_.string());
  // initdb wants an empty directory, so its output goes to a temporary file first.
  std::string tmpl = (fs::temp_directory_path() / "shopcqrs-initdb-XXXXXX").string();
  int fd = ::mkstemp(tmpl.data());
  if (fd < 0) {
    throw std::runtime_error(fmt::format("cannot create a temporary file: {}", ErrnoText(errno)));
  }
  ::close(fd);
  const fs::path init_log = tmpl;

  ChildProcessOptions child;
  child.argv = {(bin_dir_ / "initdb").string(),
                "-D",
                data_dir_.string(),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-instructions"};
  if (!options_.fsync) child.argv.push_back("--no-sync");
  child.run_as_user = run_as_user_;
  child.log_file = init_log;
  child.working_dir = data_dir_;
  ExitStatus status;
  try {
    status = RunToCompletion(child, 120s);
  } catch (...) {
    fs::remove(init_log);
    throw;
  }
  std::string tail = TailFile(init_log, kLogTailLines);
  if (!status.Success()) {
    fs::remove(init_log);
    throw std::runtime_error(fmt::format("[{}] initdb for {} failed ({}):\n{}", options_.name,
                                         data_dir_.string(), status.Describe(), tail));
  }
  {
    std::ifstream in(init_log, std::ios::binary);
    std::ofstream out(LogFile(), std::ios::app | std::ios::binary);
    out << in.rdbuf();
  }
  fs::remove(init_log);

  // Our settings live in their own file, included last so they override initdb's.
  std::ofstream conf(data_dir_ / "postgresql.conf", std::ios::app);
  conf << "\n# Added by shopcqrs: its settings (rewritten on every start).\ninclude_if_exists = '"
       << kSettingsFile << "'\n";
  if (!conf) throw std::runtime_error("cannot append to postgresql.conf");
}

// Runs after the supervisor has stopped every process a previous run left in the data
// directory (see ServerSupervisor::StopLeftovers: a postmaster that outlived its killed
// `shopcqrs up` is fast-shut-down, the backends of a postmaster killed -9 are waited for), so
// no server runs on it now. What remains are the lock files of a server that did not shut down
// cleanly: the pid in postmaster.pid may since belong to an unrelated process (PostgreSQL then
// refuses to start), and so may the pid in a socket lock file.
void PostgresServer::RemoveStaleLockFiles() {
  const fs::path pid_file = data_dir_ / "postmaster.pid";
  std::optional<pid_t> recorded;
  if (auto line = ReadFirstLine(pid_file)) recorded = ParseInt(*line);
  if (fs::exists(pid_file)) {
    spdlog::info(
        "[{}] removing stale postmaster.pid (pid {}) left by a server that did not "
        "shut down cleanly",
        options_.name, recorded ? fmt::to_string(*recorded) : "unreadable");
    fs::remove(pid_file);
  }
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(data_dir_, ec)) {
    if (entry.path().filename().string().starts_with(".s.PGSQL.")) fs::remove(entry.path(), ec);
  }
}

void PostgresServer::WriteSettings(int port) {
  std::string socket_dir = data_dir_.string();
  if (socket_dir.size() + std::string_view("/.s.PGSQL.65535.lock").size() > kMaxSocketPath ||
      socket_dir.find_first_of(",\"") != std::string::npos) {
    socket_dir = "/tmp";
  }
  std::vector<std::pair<std::string, std::string>> settings = {
      {"listen_addresses", "127.0.0.1"},
      {"port", std::to_string(port)},
      {"unix_socket_directories", socket_dir},
      {"max_connections", "200"},
      {"shared_buffers", "256MB"},
      {"logging_collector", "off"},
      {"log_line_prefix", "%m [%p] %q%u@%d "},
      {"log_timezone", "UTC"},
  };
  if (!options_.fsync) {
    // Data survives a crash of the server (not of the machine). synchronous_commit stays on:
    // without fsync it costs little, and turning it off would lose commits on kill -9.
    settings.insert(settings.end(), {{"fsync", "off"}, {"full_page_writes", "off"}});
  }
  std::string content = fmt::format(
      "# Written by shopcqrs on every start of the '{}' server; edits are overwritten.\n"
      "# Use ALTER SYSTEM (postgresql.auto.conf) for lasting changes.\n",
      options_.name);
  for (const auto& [key, value] : settings) {
    // `port` is written unquoted: the next run reads it back to reuse the port.
    content += key == "port" ? fmt::format("{} = {}\n", key, value)
                             : fmt::format("{} = {}\n", key, QuoteGucValue(value));
  }
  for (const auto& [key, value] : options_.settings) {
    if (!IsValidGucName(key) || key == "port") {
      throw std::runtime_error(fmt::format("[{}] invalid PostgreSQL setting name '{}'{}",
                                           options_.name, key,
                                           key == "port" ? " (use Options::port)" : ""));
    }
    content += fmt::format("{} = {}\n", key, QuoteGucValue(value));
  }
  const fs::path file = data_dir_ / kSettingsFile;
  WriteFileAtomically(file, content);
  if (!run_as_user_.empty()) {
    UserInfo user = LookupServerUser();
    if (::chown(file.c_str(), user.uid, user.gid) != 0) {
      throw std::runtime_error(fmt::format("cannot chown {}: {}", file.string(), ErrnoText(errno)));
    }
  }
}

ChildProcessOptions PostgresServer::Command(int) const {
  ChildProcessOptions child;
  // The data directory on the command line also tells `ps` (and tests) whose server it is.
  child.argv = {(bin_dir_ / "postgres").string(), "-D", data_dir_.string()};
  child.run_as_user = run_as_user_;
  return child;
}

// Of the PostgreSQL processes left in the data directory, the postmaster named by postmaster.pid
// is the one to ask for a fast shutdown. Its children are session leaders of their own, so they
// look like servers to the supervisor; they must not be signalled (SIGINT cancels a backend's
// query, asks the checkpointer for a checkpoint): the postmaster stops them, and those of a
// postmaster killed -9 exit on their own.
std::vector<pid_t> PostgresServer::LeftoverPostmaster(const std::vector<pid_t>& leftovers) const {
  std::optional<pid_t> recorded;
  if (auto line = ReadFirstLine(data_dir_ / "postmaster.pid")) recorded = ParseInt(*line);
  if (!recorded || std::find(leftovers.begin(), leftovers.end(), *recorded) == leftovers.end()) {
    return {};
  }
  return {*recorded};
}

void PostgresServer::Prepare(int port) {
  RemoveStaleLockFiles();
  WriteSettings(port);
}

std::string PostgresServer::Probe(int port) const {
  const std::string conninfo =
      fmt::format("host=127.0.0.1 port={} dbname=postgres user=postgres connect_timeout=2", port);
  switch (PQping(conninfo.c_str())) {
    case PQPING_OK:
      return {};
    case PQPING_REJECT:
      return "the server rejects connections (starting up or recovering)";
    case PQPING_NO_RESPONSE:
      return "no response";
    case PQPING_NO_ATTEMPT:
      break;
  }
  return "invalid connection parameters: " + conninfo;
}

// A server refuses to start for a short while after a crash or a killed predecessor.
std::string PostgresServer::RetryReason(const std::string& log) {
  if (log.find("pre-existing shared memory block") != std::string::npos) {
    return "processes of the previous server still hold its shared memory";
  }
  if (log.find("lock file \"postmaster.pid\" already exists") != std::string::npos) {
    return "postmaster.pid names a running server";  // one still shutting down
  }
  return {};
}

void PostgresServer::VerifyAndCreateDatabase() {
  infra::pg::Connection conn(ConnectionString("postgres"));
  // Make sure the server answering on the port is ours, not another one that holds it.
  const fs::path served = conn.Exec("SELECT current_setting('data_directory')").String(0, 0);
  std::error_code ec;
  if (!fs::equivalent(served, data_dir_, ec)) {
    throw std::runtime_error(
        fmt::format("[{}] port {} is served by another PostgreSQL server (data directory {})",
                    options_.name, Port(), served.string()));
  }
  if (!options_.database.empty() && conn.Exec("SELECT 1 FROM pg_database WHERE datname = $1",
                                              infra::pg::Params().Add(options_.database))
                                            .rows() == 0) {
    spdlog::info("[{}] creating database {}", options_.name, options_.database);
    CreateDatabase(options_.database);
  }
}

void PostgresServer::CreateDatabase(std::string_view name) {
  infra::pg::Connection conn(ConnectionString("postgres"));
  if (conn.Exec("SELECT 1 FROM pg_database WHERE datname = $1", infra::pg::Params().Add(name))
          .rows() > 0) {
    return;
  }
  try {
    conn.Exec("CREATE DATABASE " + conn.QuoteIdentifier(name));
  } catch (const infra::pg::PgError& error) {
    if (error.sqlstate() != "42P04") throw;  // 42P04: created concurrently
  }
}

void PostgresServer::DropDatabase(std::string_view name) {
  infra::pg::Connection conn(ConnectionString("postgres"));
  conn.Exec("DROP DATABASE IF EXISTS " + conn.QuoteIdentifier(name) + " WITH (FORCE)");
}

}  // namespace shopcqrs::devstack
