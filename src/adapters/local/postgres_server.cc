#include "adapters/local/postgres_server.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <grp.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
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

namespace shopcqrs::adapters::local {
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

struct PgConnDeleter {
  void operator()(PGconn* conn) const { PQfinish(conn); }
};
struct PgResultDeleter {
  void operator()(PGresult* res) const { PQclear(res); }
};
using PgConn = std::unique_ptr<PGconn, PgConnDeleter>;
using PgResult = std::unique_ptr<PGresult, PgResultDeleter>;

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

struct ServerUser {
  uid_t uid;
  gid_t gid;
  std::vector<gid_t> groups;
};

ServerUser LookupServerUser() {
  passwd* pw = ::getpwnam(kServerUser);
  if (pw == nullptr) {
    throw std::runtime_error(fmt::format(
        "running as root, so PostgreSQL must run as the '{}' system user, which does not "
        "exist (install postgresql-15 or create the user)",
        kServerUser));
  }
  ServerUser user{pw->pw_uid, pw->pw_gid, {}};
  int count = 64;
  user.groups.resize(static_cast<std::size_t>(count));
  if (::getgrouplist(kServerUser, user.gid, user.groups.data(), &count) < 0) {
    user.groups.resize(static_cast<std::size_t>(count));
    ::getgrouplist(kServerUser, user.gid, user.groups.data(), &count);
  }
  user.groups.resize(static_cast<std::size_t>(count));
  return user;
}

// Every parent directory must let the server user in (search permission).
void CheckTraversable(const fs::path& data_dir, const ServerUser& user) {
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

// Processes of a PostgreSQL server (postmaster or its children) whose working directory is
// `data_dir` — a server always chdirs into its data directory. Zombies are skipped.
std::vector<pid_t> ServerProcessesIn(const fs::path& data_dir) {
  std::vector<pid_t> pids;
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return pids;
  const pid_t self = ::getpid();
  while (dirent* entry = ::readdir(proc)) {
    auto pid = ParseInt(entry->d_name);
    if (!pid || *pid == self) continue;
    fs::path base = fs::path("/proc") / entry->d_name;
    std::error_code ec;
    fs::path cwd = fs::read_symlink(base / "cwd", ec);
    if (ec || cwd != data_dir) continue;
    fs::path exe = fs::read_symlink(base / "exe", ec);
    if (ec) continue;
    std::string exe_name = exe.filename().string();
    if (exe_name != "postgres" && exe_name != "postmaster") continue;
    pids.push_back(*pid);
  }
  ::closedir(proc);
  return pids;
}

bool ProcessAlive(pid_t pid) {
  if (::kill(pid, 0) != 0 && errno == ESRCH) return false;
  // A zombie (not our child, so not ours to reap) counts as gone.
  std::ifstream stat(fmt::format("/proc/{}/stat", pid));
  std::string content((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  auto close = content.rfind(')');
  if (close != std::string::npos && close + 2 < content.size() && content[close + 2] == 'Z') {
    return false;
  }
  return true;
}

PgConn Connect(const std::string& conninfo) {
  PgConn conn(PQconnectdb(conninfo.c_str()));
  if (!conn || PQstatus(conn.get()) != CONNECTION_OK) {
    std::string error = conn ? Trim(PQerrorMessage(conn.get())) : "out of memory";
    throw std::runtime_error(fmt::format("cannot connect to {}: {}", conninfo, error));
  }
  return conn;
}

PgResult Exec(PGconn* conn, const std::string& sql, const std::vector<std::string>& params = {}) {
  std::vector<const char*> values;
  for (const auto& p : params) values.push_back(p.c_str());
  PgResult res(PQexecParams(conn, sql.c_str(), static_cast<int>(values.size()), nullptr,
                            values.data(), nullptr, nullptr, 0));
  auto status = res ? PQresultStatus(res.get()) : PGRES_FATAL_ERROR;
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
    throw std::runtime_error(fmt::format(
        "{} failed: {}", sql, Trim(res ? PQresultErrorMessage(res.get()) : PQerrorMessage(conn))));
  }
  return res;
}

std::string QuoteIdentifier(PGconn* conn, std::string_view name) {
  char* quoted = PQescapeIdentifier(conn, name.data(), name.size());
  if (quoted == nullptr) {
    throw std::runtime_error(
        fmt::format("invalid identifier '{}': {}", name, Trim(PQerrorMessage(conn))));
  }
  std::string out(quoted);
  PQfreemem(quoted);
  return out;
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

int FindFreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error(fmt::format("socket() failed: {}", ErrnoText(errno)));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    int err = errno;
    ::close(fd);
    throw std::runtime_error(
        fmt::format("cannot find a free port on 127.0.0.1: {}", ErrnoText(err)));
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

bool IsPortFree(int port) {
  if (port <= 0 || port > 65535) return false;
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  bool free =
      ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 && ::listen(fd, 1) == 0;
  ::close(fd);
  return free;
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

PostgresServer::PostgresServer(Options options) : options_(std::move(options)) {
  if (options_.data_dir.empty()) throw std::runtime_error("PostgresServer: data_dir is empty");
  if (options_.port < 0 || options_.port > 65535) {
    throw std::runtime_error(fmt::format("PostgresServer: invalid port {}", options_.port));
  }
  data_dir_ = fs::absolute(options_.data_dir).lexically_normal();
  if (data_dir_.has_filename() == false) data_dir_ = data_dir_.parent_path();
  if (::geteuid() == 0) run_as_user_ = kServerUser;
}

PostgresServer::~PostgresServer() {
  try {
    Stop();
  } catch (const std::exception& e) {
    spdlog::error("[{}] stopping PostgreSQL failed: {}", options_.name, e.what());
  }
}

int PostgresServer::Port() const { return port_.load(); }

pid_t PostgresServer::Pid() const { return postmaster_.Pid(); }

std::string PostgresServer::ConnectionString() const { return ConnectionString(options_.database); }

std::string PostgresServer::ConnectionString(std::string_view database) const {
  return fmt::format("host=127.0.0.1 port={} dbname={} user=postgres", Port(),
                     QuoteConninfoValue(database));
}

bool PostgresServer::IsRunning() { return postmaster_.IsRunning(); }

std::string PostgresServer::LogTail(std::uintmax_t from) const {
  std::string tail = TailFile(LogFile(), kLogTailLines, from);
  if (tail.empty()) return fmt::format("(server log {} is empty)", LogFile().string());
  return fmt::format("last lines of {}:\n{}", LogFile().string(), tail);
}

void PostgresServer::Start() {
  std::lock_guard lock(mutex_);
  if (postmaster_.IsRunning()) return;
  StartLocked();
}

void PostgresServer::Initialize() {
  std::lock_guard lock(mutex_);
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

void PostgresServer::StartLocked() {
  const auto started = std::chrono::steady_clock::now();
  InitializeLocked();
  HandleLeftovers();

  std::string retry_reason;
  for (int attempt = 1;; ++attempt) {
    if (SpawnAndWait(attempt, &retry_reason)) break;
    if (std::chrono::steady_clock::now() - started > options_.start_timeout || attempt >= 20) {
      throw std::runtime_error(fmt::format("[{}] PostgreSQL did not start after {} attempts: {}",
                                           options_.name, attempt, retry_reason));
    }
    spdlog::info("[{}] retrying PostgreSQL start: {}", options_.name, retry_reason);
    std::this_thread::sleep_for(200ms);
  }
  try {
    VerifyAndCreateDatabase();
  } catch (...) {
    StopLocked();
    throw;
  }
  auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - started);
  spdlog::info("[{}] PostgreSQL ready on 127.0.0.1:{} (pid {}, data {}) in {} ms", options_.name,
               port_.load(), postmaster_.Pid(), data_dir_.string(), elapsed.count());
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
    ServerUser user = LookupServerUser();
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

// A previous run may have been killed: its postmaster.pid stays behind, the pid in it may
// since belong to an unrelated process (PostgreSQL then refuses to start), and orphaned
// server processes may still be running or winding down.
void PostgresServer::HandleLeftovers() {
  const fs::path pid_file = data_dir_ / "postmaster.pid";
  std::optional<pid_t> recorded;
  if (auto line = ReadFirstLine(pid_file)) recorded = ParseInt(*line);

  auto leftovers = ServerProcessesIn(data_dir_);
  if (recorded && std::find(leftovers.begin(), leftovers.end(), *recorded) != leftovers.end()) {
    spdlog::warn(
        "[{}] a PostgreSQL server (pid {}) left by a previous run is still running on "
        "{}; shutting it down",
        options_.name, *recorded, data_dir_.string());
    ::kill(*recorded, SIGINT);
  }
  if (!leftovers.empty()) {
    spdlog::info("[{}] waiting for {} process(es) of a previous server on {} to exit",
                 options_.name, leftovers.size(), data_dir_.string());
  }
  const auto deadline = std::chrono::steady_clock::now() + options_.stop_timeout;
  bool escalated = false;
  while (!leftovers.empty()) {
    std::erase_if(leftovers, [](pid_t pid) { return !ProcessAlive(pid); });
    if (leftovers.empty()) break;
    if (std::chrono::steady_clock::now() > deadline) {
      if (recorded && !escalated &&
          std::find(leftovers.begin(), leftovers.end(), *recorded) != leftovers.end()) {
        ::kill(*recorded, SIGQUIT);
        escalated = true;
        continue;
      }
      throw std::runtime_error(
          fmt::format("[{}] PostgreSQL processes from a previous run are still using {}: pids {}",
                      options_.name, data_dir_.string(), fmt::join(leftovers, ", ")));
    }
    std::this_thread::sleep_for(20ms);
  }
  if (fs::exists(pid_file)) {
    spdlog::info("[{}] removing stale postmaster.pid (pid {}) left by a previous run",
                 options_.name, recorded ? fmt::to_string(*recorded) : "unreadable");
    fs::remove(pid_file);
  }
  // Stale socket lock files in the data directory (their pid may also have been reused).
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(data_dir_, ec)) {
    if (entry.path().filename().string().starts_with(".s.PGSQL.")) fs::remove(entry.path(), ec);
  }
}

int PostgresServer::ChoosePort() const {
  if (options_.port > 0) return options_.port;
  if (auto recorded = RecordedPort(data_dir_)) {
    if (IsPortFree(*recorded)) return *recorded;
    spdlog::info("[{}] port {} of the previous run is taken; choosing another", options_.name,
                 *recorded);
  }
  return FindFreePort();
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
    ServerUser user = LookupServerUser();
    if (::chown(file.c_str(), user.uid, user.gid) != 0) {
      throw std::runtime_error(fmt::format("cannot chown {}: {}", file.string(), ErrnoText(errno)));
    }
  }
}

// Returns false (with the reason) when another attempt may succeed.
bool PostgresServer::SpawnAndWait(int attempt, std::string* retry_reason) {
  const bool auto_port = options_.port == 0;
  const int port = attempt > 1 && auto_port && retry_reason->find("port") != std::string::npos
                       ? FindFreePort()
                       : ChoosePort();
  WriteSettings(port);
  port_ = port;

  if (attempt == 1 && FileSize(LogFile()) > kMaxLogBytes) {
    std::error_code ec;  // keep one previous log
    fs::rename(LogFile(), fs::path(LogFile()) += ".old", ec);
  }
  const std::uintmax_t log_offset = FileSize(LogFile());
  ChildProcessOptions child;
  child.argv = {(bin_dir_ / "postgres").string(), "-D", data_dir_.string()};
  child.run_as_user = run_as_user_;
  child.log_file = LogFile();
  child.working_dir = data_dir_;
  child.parent_death_signal = options_.stop_with_parent ? SIGINT : 0;
  spdlog::debug("[{}] starting {} on port {}", options_.name, child.argv[0], port);
  postmaster_.Start(std::move(child));

  const std::string ping_conninfo =
      fmt::format("host=127.0.0.1 port={} dbname=postgres user=postgres connect_timeout=2", port);
  const auto deadline = std::chrono::steady_clock::now() + options_.start_timeout;
  auto pause = 5ms;
  for (;;) {
    if (!postmaster_.IsRunning()) {
      const std::string tail = TailFile(LogFile(), kLogTailLines, log_offset);
      const auto status = postmaster_.LastExit().value_or(ExitStatus{});
      if (auto_port && (tail.find("could not bind") != std::string::npos ||
                        tail.find("Address already in use") != std::string::npos)) {
        *retry_reason = fmt::format("port {} was taken", port);
        return false;
      }
      if (tail.find("pre-existing shared memory block") != std::string::npos) {
        *retry_reason = "processes of the previous server still hold its shared memory";
        return false;
      }
      throw std::runtime_error(fmt::format("[{}] PostgreSQL exited during startup ({}); {}",
                                           options_.name, status.Describe(), LogTail(log_offset)));
    }
    const PGPing ping = PQping(ping_conninfo.c_str());
    if (ping == PQPING_OK) return true;
    if (ping == PQPING_NO_ATTEMPT) {
      throw std::runtime_error(
          fmt::format("[{}] invalid connection parameters: {}", options_.name, ping_conninfo));
    }
    if (std::chrono::steady_clock::now() > deadline) {
      std::string tail = LogTail(log_offset);
      StopLocked();
      throw std::runtime_error(
          fmt::format("[{}] PostgreSQL did not accept connections on port {} within {} ms; {}",
                      options_.name, port, options_.start_timeout.count(), tail));
    }
    std::this_thread::sleep_for(pause);
    pause = std::min<std::chrono::milliseconds>(pause * 2, 50ms);
  }
}

void PostgresServer::VerifyAndCreateDatabase() {
  PgConn conn = Connect(ConnectionString("postgres"));
  // Make sure the server answering on the port is ours, not another one that holds it.
  PgResult res = Exec(conn.get(), "SELECT current_setting('data_directory')");
  std::error_code ec;
  const fs::path served = PQgetvalue(res.get(), 0, 0);
  if (!fs::equivalent(served, data_dir_, ec)) {
    throw std::runtime_error(
        fmt::format("[{}] port {} is served by another PostgreSQL server (data directory {})",
                    options_.name, port_.load(), served.string()));
  }
  if (!options_.database.empty()) {
    PgResult exists =
        Exec(conn.get(), "SELECT 1 FROM pg_database WHERE datname = $1", {options_.database});
    if (PQntuples(exists.get()) == 0) {
      spdlog::info("[{}] creating database {}", options_.name, options_.database);
      conn.reset();
      CreateDatabase(options_.database);
    }
  }
}

void PostgresServer::CreateDatabase(std::string_view name) {
  PgConn conn = Connect(ConnectionString("postgres"));
  PgResult exists =
      Exec(conn.get(), "SELECT 1 FROM pg_database WHERE datname = $1", {std::string(name)});
  if (PQntuples(exists.get()) > 0) return;
  const std::string sql = "CREATE DATABASE " + QuoteIdentifier(conn.get(), name);
  PgResult res(PQexec(conn.get(), sql.c_str()));
  if (PQresultStatus(res.get()) == PGRES_COMMAND_OK) return;
  const char* state = PQresultErrorField(res.get(), PG_DIAG_SQLSTATE);
  if (state && std::string_view(state) == "42P04") return;  // created concurrently
  throw std::runtime_error(
      fmt::format("{} failed: {}", sql, Trim(PQresultErrorMessage(res.get()))));
}

void PostgresServer::DropDatabase(std::string_view name) {
  PgConn conn = Connect(ConnectionString("postgres"));
  Exec(conn.get(),
       "DROP DATABASE IF EXISTS " + QuoteIdentifier(conn.get(), name) + " WITH (FORCE)");
}

void PostgresServer::Stop() {
  std::lock_guard lock(mutex_);
  StopLocked();
}

void PostgresServer::StopLocked() {
  if (!postmaster_.IsRunning()) return;
  const pid_t pid = postmaster_.Pid();
  spdlog::info("[{}] stopping PostgreSQL (pid {})", options_.name, pid);
  postmaster_.Kill(SIGINT);  // fast shutdown
  auto status = postmaster_.Wait(options_.stop_timeout);
  if (!status) {
    spdlog::warn("[{}] PostgreSQL did not stop within {} ms; immediate shutdown", options_.name,
                 options_.stop_timeout.count());
    postmaster_.Kill(SIGQUIT);
    status = postmaster_.Wait(10s);
  }
  if (!status) {
    spdlog::error("[{}] PostgreSQL ignores SIGQUIT; killing it", options_.name);
    postmaster_.Kill(SIGKILL);
    status = postmaster_.Wait();
  }
  if (status && !status->Success()) {
    spdlog::warn("[{}] PostgreSQL stopped with {}", options_.name, status->Describe());
  } else {
    spdlog::info("[{}] PostgreSQL stopped", options_.name);
  }
}

}  // namespace shopcqrs::adapters::local
