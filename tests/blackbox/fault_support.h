#pragma once

// Support for the black-box fault test (fault_test.cc): a private `shopcqrs up` that can be
// killed with SIGKILL and started again on the same data directory and the same listen address,
// and the process helpers that find the servers it runs.
//
// The suite's shared service (service_fixture.h) is never touched: the fault test kills servers,
// and other tests run against the shared one.

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <optional>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "blackbox/service_fixture.h"

#ifndef SHOPCQRS_BINARY
#error "SHOPCQRS_BINARY must name the shopcqrs executable"
#endif

namespace shopcqrs::blackbox::fault {

// ---------------------------------------------------------------------------------------------
// Processes.
// ---------------------------------------------------------------------------------------------

// The state letter of /proc/PID/stat ('\0' when there is no such process).
inline char ProcessState(pid_t pid) {
  const std::string stat = ServiceProcess::ReadFile("/proc/" + std::to_string(pid) + "/stat");
  const auto close = stat.rfind(')');
  if (close == std::string::npos || close + 2 >= stat.size()) return '\0';
  return stat[close + 2];
}

// A process that exists and is not a zombie.
inline bool IsLive(pid_t pid) {
  if (pid <= 0) return false;
  const char state = ProcessState(pid);
  return state != '\0' && state != 'Z' && state != 'X';
}

// /proc/PID/cmdline with the NULs as spaces ("" for a zombie or no process).
inline std::string Cmdline(pid_t pid) {
  std::string cmdline = ServiceProcess::ReadFile("/proc/" + std::to_string(pid) + "/cmdline");
  std::replace(cmdline.begin(), cmdline.end(), '\0', ' ');
  return cmdline;
}

inline std::vector<pid_t> AllPids() {
  std::vector<pid_t> pids;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() ||
        !std::all_of(name.begin(), name.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      continue;
    }
    pids.push_back(static_cast<pid_t>(std::stol(name)));
  }
  return pids;
}

// The live child processes of `parent` whose command name (/proc/PID/stat) is `comm`.
inline std::vector<pid_t> ChildrenNamed(pid_t parent, std::string_view comm) {
  std::vector<pid_t> pids;
  for (const pid_t pid : AllPids()) {
    const std::string stat = ServiceProcess::ReadFile("/proc/" + std::to_string(pid) + "/stat");
    const auto open = stat.find('(');
    const auto close = stat.rfind(')');
    if (open == std::string::npos || close == std::string::npos || close < open) continue;
    if (std::string_view(stat).substr(open + 1, close - open - 1) != comm) continue;
    std::istringstream rest(stat.substr(close + 1));
    char state = 0;
    long ppid = 0;
    if (!(rest >> state >> ppid)) continue;
    if (state == 'Z' || state == 'X' || ppid != parent) continue;
    pids.push_back(pid);
  }
  return pids;
}

// The pid on the first line of `pg_data_dir`/postmaster.pid (0 when there is none).
inline pid_t PostmasterPid(const std::filesystem::path& pg_data_dir) {
  std::ifstream in(pg_data_dir / "postmaster.pid");
  long pid = 0;
  if (in >> pid && pid > 0) return static_cast<pid_t>(pid);
  return 0;
}

// The live postmaster of `pg_data_dir` (its postmaster.pid names a live process whose command
// line names that directory); 0 when there is none right now (e.g. between a crash and the
// restart).
inline pid_t LivePostmaster(const std::filesystem::path& pg_data_dir) {
  const pid_t pid = PostmasterPid(pg_data_dir);
  if (!IsLive(pid)) return 0;
  return Cmdline(pid).find(pg_data_dir.string()) != std::string::npos ? pid : 0;
}

// Whether a listener could bind 127.0.0.1:`port` now (0: any port; the port bound is returned).
inline unsigned short TryBind(unsigned short port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(port);
  socklen_t length = sizeof address;
  unsigned short bound = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0) {
    bound = ntohs(address.sin_port);
  }
  ::close(fd);
  return bound;
}

// A TCP port on 127.0.0.1 that is free now and, preferably, below the kernel's ephemeral range
// (ip_local_port_range): a restarted `up` must get it back, and while it is down neither an
// outgoing connection nor a server asking for port 0 may take it.
inline unsigned short FreeTcpPort() {
  int ephemeral_low = 32768;
  std::ifstream("/proc/sys/net/ipv4/ip_local_port_range") >> ephemeral_low;
  if (ephemeral_low > 20000) {
    std::mt19937 rng{std::random_device{}()};
    std::uniform_int_distribution<int> pick(20000, ephemeral_low - 1);
    for (int attempt = 0; attempt < 200; ++attempt) {
      const auto port = static_cast<unsigned short>(pick(rng));
      if (TryBind(port) == port) return port;
    }
  }
  if (const unsigned short port = TryBind(0)) return port;
  throw std::runtime_error("cannot find a free port: " + std::string(std::strerror(errno)));
}

// ---------------------------------------------------------------------------------------------
// A private `shopcqrs up` on a fixed data directory and listen address.
// ---------------------------------------------------------------------------------------------

// Runs `shopcqrs up --data-dir <tmp>/data --listen 127.0.0.1:<port>`; Start() may be called again
// after Kill() (a new process on the same data directory and address, as an operator would
// restart it). Each start's stdout goes to its own file (stdout.N.log), stderr of all starts to
// stderr.log. Start() must run on a thread that outlives the service (the test's main thread):
// the child gets SIGTERM when the forking thread ends (PR_SET_PDEATHSIG).
//
// The destructor stops the service (SIGTERM), then ends whatever a killed `up` left running in
// its directory (PostgreSQL: fast shutdown; anything else naming the directory: SIGKILL, by pid)
// and removes the directory unless SHOPCQRS_BLACKBOX_KEEP is set.
class UpInstance {
 public:
  explicit UpInstance(std::string name = "shopcqrs-fault") {
    std::string pattern = "/tmp/" + name + ".XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) {
      throw std::runtime_error("mkdtemp failed: " + std::string(std::strerror(errno)));
    }
    root_ = pattern;
    // PostgreSQL runs as the postgres user when we are root: it must be able to traverse.
    ::chmod(root_.c_str(), 0755);
    ::mkdir(data_dir().c_str(), 0755);
    ::chmod(data_dir().c_str(), 0755);
    port_ = FreeTcpPort();
  }
  UpInstance(const UpInstance&) = delete;
  UpInstance& operator=(const UpInstance&) = delete;
  ~UpInstance() {
    try {
      Stop();
      EndLeftovers();
    } catch (...) {
    }
    const char* keep = std::getenv("SHOPCQRS_BLACKBOX_KEEP");
    if (keep == nullptr || std::string_view(keep).empty() || std::string_view(keep) == "0") {
      std::error_code ignored;
      std::filesystem::remove_all(root_, ignored);
    }
  }

  // Spawns `up` and waits for its "serving" line (on our address). Throws std::runtime_error
  // with the log tails when it exits first or `timeout` passes (it is then killed).
  void Start(std::chrono::seconds timeout = std::chrono::seconds(120)) {
    if (running()) throw std::runtime_error("already running");
    Spawn();
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    const std::string want =
        std::string(ServiceProcess::kServingPrefix) + "127.0.0.1:" + std::to_string(port_);
    while (true) {
      if (ServiceProcess::ReadFile(stdout_path()).find(want) != std::string::npos) return;
      if (const auto status = Reap(std::chrono::milliseconds(0))) {
        throw std::runtime_error("shopcqrs up exited before serving (" +
                                 ServiceProcess::DescribeStatus(*status) + ")\n" + Diagnostics());
      }
      if (std::chrono::steady_clock::now() >= deadline) {
        Kill();
        throw std::runtime_error("shopcqrs up did not serve within " +
                                 std::to_string(timeout.count()) + " s\n" + Diagnostics());
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }

  // SIGKILL to the `up` process, which is then reaped. What it ran stays as the kernel leaves it.
  void Kill() {
    if (!running()) return;
    ::kill(pid_, SIGKILL);
    Reap(std::chrono::seconds(30));
  }

  // SIGTERM and up to `wait` for a clean exit; SIGKILL after that. The waitpid status, or
  // nullopt when it had to be killed (or was not running).
  std::optional<int> Stop(std::chrono::seconds wait = std::chrono::seconds(30)) {
    if (!running()) return std::nullopt;
    ::kill(pid_, SIGTERM);
    if (auto status = Reap(wait)) return status;
    Kill();
    return std::nullopt;
  }

  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }
  std::string host() const { return "127.0.0.1"; }
  unsigned short port() const { return port_; }
  Endpoint endpoint() const { return Endpoint{host(), port_}; }
  const std::string& root() const { return root_; }
  std::string data_dir() const { return root_ + "/data"; }
  int starts() const { return starts_; }
  std::string stdout_path() const { return root_ + "/stdout." + std::to_string(starts_) + ".log"; }
  std::string stderr_path() const { return root_ + "/stderr.log"; }

  // The last `max_bytes` of stderr (all starts) and of the current start's stdout.
  std::string Diagnostics(std::size_t max_bytes = 8000) const {
    auto tail = [&](const std::string& path) {
      std::string text = ServiceProcess::ReadFile(path);
      if (text.size() > max_bytes) text = "...\n" + text.substr(text.size() - max_bytes);
      return "---- " + path + " ----\n" + text + "\n";
    };
    return tail(stderr_path()) + tail(stdout_path()) + "----";
  }

  // Live processes other than `up` itself whose command line names our directory.
  std::vector<pid_t> Leftovers() const {
    std::vector<pid_t> pids;
    for (const pid_t pid : AllPids()) {
      if (pid == pid_ || pid == ::getpid() || !IsLive(pid)) continue;
      if (Cmdline(pid).find(root_) != std::string::npos) pids.push_back(pid);
    }
    return pids;
  }

 private:
  void Spawn() {
    ++starts_;
    const std::string binary = SHOPCQRS_BINARY;
    std::vector<std::string> args = {binary,     "up",       "--data-dir",
                                     data_dir(), "--listen", host() + ":" + std::to_string(port_)};
    std::vector<char*> argv;
    for (auto& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);

    const int out_fd =
        ::open(stdout_path().c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    const int err_fd =
        ::open(stderr_path().c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    const int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (out_fd < 0 || err_fd < 0 || null_fd < 0) {
      throw std::runtime_error("cannot open the log files in " + root_);
    }
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid < 0) throw std::runtime_error("fork: " + std::string(std::strerror(errno)));
    if (pid == 0) {
      // Child: only async-signal-safe calls from here on.
      ::prctl(PR_SET_PDEATHSIG, SIGTERM);  // never outlive a crashed test binary
      if (::getppid() != parent) ::_exit(126);
      ::dup2(null_fd, STDIN_FILENO);
      ::dup2(out_fd, STDOUT_FILENO);
      ::dup2(err_fd, STDERR_FILENO);
      ::execv(binary.c_str(), argv.data());
      static constexpr char kMessage[] = "fault test: execv failed\n";
      [[maybe_unused]] auto ignored = ::write(STDERR_FILENO, kMessage, sizeof kMessage - 1);
      ::_exit(127);
    }
    ::close(out_fd);
    ::close(err_fd);
    ::close(null_fd);
    pid_ = pid;
  }

  std::optional<int> Reap(std::chrono::milliseconds wait) {
    if (pid_ <= 0) return std::nullopt;
    const auto deadline = std::chrono::steady_clock::now() + wait;
    while (true) {
      int status = 0;
      const pid_t r = ::waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        pid_ = -1;
        return status;
      }
      if (r < 0 && errno != EINTR) {  // not our child any more: nothing to wait for
        pid_ = -1;
        return -1;
      }
      if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }

  // After a killed `up`: fast shutdown of the PostgreSQL servers it left, then SIGKILL to
  // anything else still naming our directory.
  void EndLeftovers() {
    for (const char* server : {"write-pg", "read-pg"}) {
      const pid_t pid = LivePostmaster(std::filesystem::path(data_dir()) / server);
      if (pid <= 0) continue;
      ::kill(pid, SIGINT);
      for (int i = 0; i < 200 && IsLive(pid); ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    }
    for (int round = 0; round < 50; ++round) {
      const auto pids = Leftovers();
      if (pids.empty()) return;
      for (const pid_t pid : pids) ::kill(pid, SIGKILL);
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }

  std::string root_;
  unsigned short port_ = 0;
  pid_t pid_ = -1;
  int starts_ = 0;
};

// ---------------------------------------------------------------------------------------------
// Small things.
// ---------------------------------------------------------------------------------------------

// The nearest-rank percentile `p` (0..1) of `values` (-1 when empty).
inline double Percentile(std::vector<double> values, double p) {
  if (values.empty()) return -1;
  std::sort(values.begin(), values.end());
  const auto rank = static_cast<std::size_t>(std::ceil(p * static_cast<double>(values.size())));
  return values[std::clamp<std::size_t>(rank, 1, values.size()) - 1];
}

// YYYY-MM-DD (UTC) of `t`.
inline std::string UtcDate(std::chrono::system_clock::time_point t) {
  const std::time_t seconds = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  ::gmtime_r(&seconds, &tm);
  char out[16];
  std::strftime(out, sizeof out, "%Y-%m-%d", &tm);
  return out;
}

// An integer environment variable, `fallback` when unset or not a number.
inline long EnvLong(const char* name, long fallback) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') return fallback;
  char* end = nullptr;
  const long parsed = std::strtol(value, &end, 10);
  return end != nullptr && *end == '\0' ? parsed : fallback;
}

inline std::string EnvString(const char* name) {
  const char* value = std::getenv(name);
  return value ? std::string(value) : std::string();
}

}  // namespace shopcqrs::blackbox::fault
