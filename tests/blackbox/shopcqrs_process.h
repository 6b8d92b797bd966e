#pragma once

// The black-box tests' one way of running the `shopcqrs` binary (devstack::ChildProcess), the
// temporary directory a private instance lives in, and the /proc helpers that find what an
// instance runs (or left behind).

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "devstack/process.h"
#include "support/http_client.h"

#ifndef SHOPCQRS_BINARY
#error "SHOPCQRS_BINARY must name the shopcqrs executable"
#endif

namespace shopcqrs::blackbox {

struct Endpoint {
  std::string host;
  unsigned short port = 0;
};

// The whole file ("" when it cannot be read).
inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// ---------------------------------------------------------------------------------------------
// Processes.
// ---------------------------------------------------------------------------------------------

// /proc/PID/cmdline with the NULs as spaces ("" for a zombie or no process).
inline std::string Cmdline(pid_t pid) {
  std::string cmdline = ReadFile("/proc/" + std::to_string(pid) + "/cmdline");
  std::replace(cmdline.begin(), cmdline.end(), '\0', ' ');
  return cmdline;
}

inline std::vector<pid_t> AllPids() {
  std::vector<pid_t> pids;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    pids.push_back(static_cast<pid_t>(std::stol(name)));
  }
  return pids;
}

// Whether `pid` is a live process (not a zombie) whose command line contains `text`.
inline bool LiveAndMentions(pid_t pid, std::string_view text) {
  return devstack::ProcessAlive(pid) && Cmdline(pid).find(text) != std::string::npos;
}

// The live processes, other than this one, whose command line contains `text`.
inline std::vector<pid_t> ProcessesMentioning(std::string_view text) {
  std::vector<pid_t> pids;
  for (const pid_t pid : AllPids()) {
    if (pid != ::getpid() && LiveAndMentions(pid, text)) pids.push_back(pid);
  }
  return pids;
}

// The live child processes of `parent` whose command name (/proc/PID/comm) is `comm`.
inline std::vector<pid_t> ChildrenNamed(pid_t parent, std::string_view comm) {
  std::vector<pid_t> pids;
  for (const pid_t pid : AllPids()) {
    std::string name = ReadFile("/proc/" + std::to_string(pid) + "/comm");
    if (!name.empty() && name.back() == '\n') name.pop_back();
    if (name != comm || devstack::ParentOf(pid) != parent || !devstack::ProcessAlive(pid)) {
      continue;
    }
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
  return pid > 0 && LiveAndMentions(pid, pg_data_dir.string()) ? pid : 0;
}

// Fast shutdown (SIGINT, up to 10 s each) of the PostgreSQL servers still running on the
// directories below `data_dir` (what a killed `up` leaves behind).
inline void StopPostmastersUnder(const std::filesystem::path& data_dir) {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(data_dir, ec)) {
    const pid_t pid = LivePostmaster(entry.path());
    if (pid <= 0) continue;
    ::kill(pid, SIGINT);
    for (int i = 0; i < 200 && LiveAndMentions(pid, entry.path().string()); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Ports.
// ---------------------------------------------------------------------------------------------

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
// A private instance's directory.
// ---------------------------------------------------------------------------------------------

// /tmp/<name>.XXXXXX with a data/ directory in it, both traversable by the postgres user (as
// whom PostgreSQL runs when we are root). Removed at destruction unless SHOPCQRS_BLACKBOX_KEEP is
// set (and not "0").
class TempRoot {
 public:
  explicit TempRoot(const std::string& name) {
    std::string pattern = "/tmp/" + name + ".XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) {
      throw std::runtime_error("mkdtemp failed: " + std::string(std::strerror(errno)));
    }
    path_ = pattern;
    ::chmod(path_.c_str(), 0755);
    ::mkdir(data_dir().c_str(), 0755);
    ::chmod(data_dir().c_str(), 0755);
  }
  TempRoot(const TempRoot&) = delete;
  TempRoot& operator=(const TempRoot&) = delete;
  ~TempRoot() {
    const char* keep = std::getenv("SHOPCQRS_BLACKBOX_KEEP");
    if (keep == nullptr || std::string_view(keep).empty() || std::string_view(keep) == "0") {
      std::error_code ignored;
      std::filesystem::remove_all(path_, ignored);
    }
  }

  const std::string& path() const { return path_; }
  std::string data_dir() const { return path_ + "/data"; }

 private:
  std::string path_;
};

// ---------------------------------------------------------------------------------------------
// The shopcqrs binary as a child process.
// ---------------------------------------------------------------------------------------------

// One run at a time of `shopcqrs <args>`: stdin /dev/null, stdout to a file (truncated at each
// start) or through a pipe that the test reads (and copies to that file), stderr appended to a
// file. The child stays in the test binary's process group and gets SIGTERM when the thread
// that spawned it ends (PR_SET_PDEATHSIG), which keeps a crashed test binary from leaving
// servers behind: spawn from a thread that outlives the service (the main thread).
class ShopcqrsProcess {
 public:
  static constexpr std::string_view kServingPrefix = "shopcqrs serving http://";

  // Where the service's stdout goes. kFile by default: the service must never get SIGPIPE (for
  // example when it logs while stopping after this test binary died). kPipe reads it through a
  // pipe (as a supervisor would); CloseStdoutPipe() then closes the reading end.
  enum class Stdout { kFile, kPipe };

  struct Launch {
    std::vector<std::string> args;  // after the program
    std::string stdout_path;
    std::string stderr_path;
    Stdout stdout_mode = Stdout::kFile;
    std::vector<std::pair<std::string, std::string>> env;  // added to the test's environment
  };

  ShopcqrsProcess() = default;
  ShopcqrsProcess(const ShopcqrsProcess&) = delete;
  ShopcqrsProcess& operator=(const ShopcqrsProcess&) = delete;
  virtual ~ShopcqrsProcess() = default;  // the ChildProcess kills a child still running

  // Starts the binary without waiting for anything. Throws std::runtime_error when it cannot.
  void Spawn(Launch launch) {
    if (running()) Fail("already running");
    launch_ = std::move(launch);
    devstack::ChildProcessOptions options;
    options.argv = {SHOPCQRS_BINARY};
    options.argv.insert(options.argv.end(), launch_.args.begin(), launch_.args.end());
    options.env = launch_.env;
    options.new_process_group = false;
    options.parent_death_signal = SIGTERM;  // never outlive a crashed test binary
    options.stderr_to = devstack::ChildOutput::AppendTo(launch_.stderr_path);
    if (launch_.stdout_mode == Stdout::kPipe) {
      std::ofstream(launch_.stdout_path, std::ios::trunc).close();
      options.stdout_to = devstack::ChildOutput::Pipe();
    } else {
      options.stdout_to = devstack::ChildOutput::TruncateTo(launch_.stdout_path);
    }
    try {
      child_.Start(std::move(options));
    } catch (const std::exception& e) {
      Fail(e.what());
    }
    endpoint_.reset();
  }

  // The address of the "serving" line once stdout has one.
  std::optional<Endpoint> ServingEndpoint() {
    if (endpoint_) return endpoint_;
    DrainStdoutPipe();
    const std::string out = ReadFile(launch_.stdout_path);
    std::size_t line_start = 0;
    std::size_t eol;
    while ((eol = out.find('\n', line_start)) != std::string::npos) {
      const std::string line = out.substr(line_start, eol - line_start);
      line_start = eol + 1;
      const auto at = line.find(kServingPrefix);
      if (at == std::string::npos) continue;
      endpoint_ = ParseAddress(line.substr(at + kServingPrefix.size()));
      return endpoint_;
    }
    return std::nullopt;
  }

  // Waits (up to `timeout`) for the "serving" line of the spawned process; any thread. Throws
  // std::runtime_error (with the log tails) when it exits first or does not serve in time (it
  // is then killed).
  Endpoint WaitUntilServing(std::chrono::milliseconds timeout = std::chrono::seconds(120)) {
    if (child_.Pid() == 0) Fail("not spawned");
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
      if (const auto endpoint = ServingEndpoint()) {
        RegisterAdminToken(*endpoint);
        return *endpoint;
      }
      if (const auto status = Wait(std::chrono::milliseconds(0))) {
        Fail("exited before serving (" + status->Describe() + ")");
      }
      if (std::chrono::steady_clock::now() >= deadline) {
        Kill();
        Fail("timed out after " +
             std::to_string(std::chrono::duration_cast<std::chrono::seconds>(timeout).count()) +
             " s waiting for the 'serving' line");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }

  // Sends `signal` and waits up to `wait` for the process to exit; SIGKILL after that.
  // Returns the exit status, or nullopt when the process had to be killed. When it is not
  // running: the status of its last run (nullopt if never started).
  std::optional<devstack::ExitStatus> Stop(
      int signal = SIGTERM, std::chrono::milliseconds wait = std::chrono::seconds(30)) {
    if (!running()) return child_.LastExit();
    child_.Kill(signal);
    if (auto status = Wait(wait)) return status;
    Kill();
    return std::nullopt;
  }

  // SIGKILL, then reaps it; AfterKill() then deals with what it ran.
  void Kill() {
    if (!running()) return;
    child_.Kill(SIGKILL);
    Wait(std::chrono::seconds(30));
    AfterKill();
  }

  // Sends a signal without waiting.
  void Signal(int signal) { child_.Kill(signal); }

  // Waits up to `wait` for the process to exit; its exit status (that of the last run when it
  // is not running, nullopt if never started).
  std::optional<devstack::ExitStatus> Wait(std::chrono::milliseconds wait) {
    return child_.Wait(wait);
  }

  // Closes the reading end of the stdout pipe (Stdout::kPipe): the service's next write to
  // stdout then fails with EPIPE / SIGPIPE.
  void CloseStdoutPipe() {
    DrainStdoutPipe();
    child_.CloseOutput(devstack::ChildStream::kStdout);
  }

  // Whether the process has been spawned and has not exited (reaps it when it has).
  bool running() { return child_.IsRunning(); }
  // Its pid until it has been reaped (by running(), Wait, Stop or Kill); -1 after that.
  pid_t pid() const { return child_.Pid() > 0 && !child_.LastExit() ? child_.Pid() : -1; }
  const std::string& stdout_path() const { return launch_.stdout_path; }
  const std::string& stderr_path() const { return launch_.stderr_path; }

  // The last `max_bytes` of the process's stderr and stdout.
  std::string Diagnostics(std::size_t max_bytes = 8000) const {
    if (launch_.stdout_path.empty()) return {};
    auto tail = [&](const std::string& path) {
      std::string text = ReadFile(path);
      if (text.size() > max_bytes) text = "...\n" + text.substr(text.size() - max_bytes);
      return "---- " + path + " ----\n" + text + "\n";
    };
    return tail(launch_.stderr_path) + tail(launch_.stdout_path) + "----";
  }

 protected:
  // After Kill(): what a killed process left running is ended here by owners that want that.
  virtual void AfterKill() {}

  [[noreturn]] void Fail(const std::string& what) const {
    std::string command = "shopcqrs";
    for (const auto& arg : launch_.args) command += " " + arg;
    throw std::runtime_error(command + ": " + what + "\n" + Diagnostics());
  }

 private:
  // Copies what is available in the stdout pipe to the stdout file.
  void DrainStdoutPipe() {
    if (launch_.stdout_mode != Stdout::kPipe) return;
    const std::string chunk = child_.ReadOutput(devstack::ChildStream::kStdout);
    if (chunk.empty()) return;
    std::ofstream(launch_.stdout_path, std::ios::binary | std::ios::app) << chunk;
  }

  // `up --data-dir DIR` writes DIR/admin-token before it serves: requests to it send that token
  // by default (testing::DefaultCredentials).
  void RegisterAdminToken(const Endpoint& endpoint) const {
    const auto& args = launch_.args;
    for (std::size_t i = 0; i + 1 < args.size(); ++i) {
      if (args[i] != "--data-dir") continue;
      std::string token = ReadFile(args[i + 1] + "/admin-token");
      while (!token.empty() && (token.back() == '\n' || token.back() == '\r')) token.pop_back();
      if (!token.empty())
        shopcqrs::testing::DefaultCredentials::Set(endpoint.port, "Bearer " + token);
    }
  }

  Endpoint ParseAddress(const std::string& rest) const {
    // "127.0.0.1:PORT" possibly followed by a path or more text.
    std::string address = rest.substr(0, rest.find_first_of(" /\r\t"));
    const auto colon = address.rfind(':');
    if (colon == std::string::npos) Fail("cannot parse the serving line: " + rest);
    Endpoint endpoint;
    endpoint.host = address.substr(0, colon);
    if (endpoint.host.size() > 2 && endpoint.host.front() == '[') {
      endpoint.host = endpoint.host.substr(1, endpoint.host.size() - 2);
    }
    endpoint.port = static_cast<unsigned short>(std::stoi(address.substr(colon + 1)));
    return endpoint;
  }

  devstack::ChildProcess child_;
  Launch launch_;
  std::optional<Endpoint> endpoint_;
};

}  // namespace shopcqrs::blackbox
