#include "devstack/server_supervisor.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

namespace shopcqrs::devstack {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

constexpr std::size_t kLogTailLines = 30;
// After SIGKILL, how long leftovers may take to disappear.
constexpr auto kKillTimeout = 10s;

std::uintmax_t FileSize(const fs::path& file) {
  std::error_code ec;
  const auto size = fs::file_size(file, ec);
  return ec ? 0 : size;
}

std::string DescribeLog(const fs::path& log_file, std::uintmax_t from) {
  const std::string tail = TailFile(log_file, kLogTailLines, from);
  if (tail.empty()) return fmt::format("nothing new in {}", log_file.string());
  return fmt::format("last lines of {}:\n{}", log_file.string(), tail);
}

}  // namespace

int FindFreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error(fmt::format("socket() failed: {}", std::strerror(errno)));
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
        fmt::format("cannot find a free port on 127.0.0.1: {}", std::strerror(err)));
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

ServerSupervisor::ServerSupervisor(Options options) : options_(std::move(options)) {
  if (options_.data_dir.empty()) {
    throw std::runtime_error(fmt::format("{}: data_dir is empty", options_.program));
  }
  if (options_.port < 0 || options_.port > 65535) {
    throw std::runtime_error(fmt::format("{}: invalid port {}", options_.program, options_.port));
  }
  options_.data_dir = fs::absolute(options_.data_dir).lexically_normal();
}

ServerSupervisor::~ServerSupervisor() {
  try {
    Stop();
  } catch (const std::exception& e) {
    spdlog::error("[{}] stopping {} failed: {}", options_.name, options_.program, e.what());
  }
}

bool ServerSupervisor::IsRunning() { return child_.IsRunning(); }

bool ServerSupervisor::IsSupervising() const {
  std::lock_guard lifecycle(lifecycle_);
  return supervisor_.joinable();
}

bool ServerSupervisor::StopRequested() {
  std::lock_guard lock(mutex_);
  return stop_;
}

int ServerSupervisor::ChoosePort() const {
  if (options_.port > 0) return options_.port;
  std::optional<int> recorded;
  if (options_.recorded_port) {
    recorded = options_.recorded_port();
  } else if (std::ifstream in(options_.data_dir / "port"); in) {
    if (int port = 0; in >> port) recorded = port;
  }
  if (recorded && *recorded > 0) {
    if (IsPortFree(*recorded)) return *recorded;
    spdlog::info("[{}] port {} of the previous run is taken; choosing another", options_.name,
                 *recorded);
  }
  return FindFreePort();
}

void ServerSupervisor::RecordPort(int port) const {
  if (options_.recorded_port) return;  // `prepare` records it
  std::ofstream(options_.data_dir / "port") << port << '\n';
}

void ServerSupervisor::Start() {
  std::lock_guard lifecycle(lifecycle_);
  if (supervisor_.joinable()) return;
  fs::create_directories(options_.data_dir);
  canonical_dir_ = fs::canonical(options_.data_dir);
  {
    std::lock_guard lock(mutex_);
    stop_ = false;
    kill_ = false;
    started_ = false;
    start_error_ = nullptr;
  }
  supervisor_ = std::thread([this] { Supervise(); });
  std::unique_lock lock(mutex_);
  changed_.wait(lock, [&] { return started_; });
  if (start_error_) {
    lock.unlock();
    supervisor_.join();
    std::rethrow_exception(start_error_);
  }
}

void ServerSupervisor::Stop() {
  std::lock_guard lifecycle(lifecycle_);
  if (!supervisor_.joinable()) return;
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  changed_.notify_all();
  supervisor_.join();
}

void ServerSupervisor::Kill() {
  std::lock_guard lifecycle(lifecycle_);
  if (!supervisor_.joinable()) return;
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
    kill_ = true;
  }
  changed_.notify_all();
  supervisor_.join();
}

std::string ServerSupervisor::ExecutableName() {
  const std::string program = options_.command(port_.load()).argv.at(0);
  const auto path = FindExecutable(program);
  if (!path) return fs::path(program).filename().string();
  std::error_code ec;
  const fs::path resolved = fs::canonical(*path, ec);  // e.g. redis-server -> redis-check-rdb
  return (ec ? *path : resolved).filename().string();
}

// What a previous run left: processes of our program whose working directory is our data
// directory. Typically the server of a `shopcqrs up` that was killed -9 (its child may survive,
// or still be shutting down on its parent-death signal), or the backends of a PostgreSQL
// postmaster killed -9, which exit on their own shortly after.
//
// A live leftover server is stopped and then started again under this supervisor, not
// adopted: a process that is not our child cannot be waited for (its death is only visible by
// polling a pid that may be reused), gets no parent-death signal, and keeps the settings and
// binary of the run that started it. Stopping it cleanly (stop_signal, which makes PostgreSQL
// checkpoint and Redis/JetStream flush; SIGKILL after stop_timeout) and starting it again
// costs a few seconds once, and leaves one start/stop/restart path for every server.
//
// Only the main process of a leftover server gets stop_signal (see Options::leftover_servers);
// its other processes, such as the backends of a postmaster killed -9, are waited for, and
// killed after stop_timeout.
void ServerSupervisor::StopLeftovers() {
  const std::string exe = ExecutableName();
  auto find = [&] {
    auto pids = ProcessesIn(canonical_dir_, exe);
    if (child_.IsRunning()) std::erase(pids, child_.Pid());
    return pids;
  };
  auto leftovers = find();
  if (leftovers.empty()) return;
  std::vector<pid_t> leaders;
  if (options_.leftover_servers) {
    leaders = options_.leftover_servers(leftovers);
  } else {
    for (pid_t pid : leftovers) {
      const auto parent = ParentOf(pid);
      if (parent && std::find(leftovers.begin(), leftovers.end(), *parent) == leftovers.end()) {
        leaders.push_back(pid);
      }
    }
  }
  if (!leaders.empty()) {
    spdlog::warn(
        "[{}] {} left running by a previous run (pid {}) in {}; stopping it (signal {}) to "
        "start it again under this supervisor",
        options_.name, options_.program, fmt::join(leaders, ", "), canonical_dir_.string(),
        options_.stop_signal);
    for (pid_t pid : leaders) ::kill(pid, options_.stop_signal);
  } else {
    spdlog::info("[{}] waiting for {} process(es) of a previous {} in {} to exit (pids {})",
                 options_.name, leftovers.size(), options_.program, canonical_dir_.string(),
                 fmt::join(leftovers, ", "));
  }
  auto deadline = std::chrono::steady_clock::now() + options_.stop_timeout;
  bool killed = false;
  for (;;) {
    std::erase_if(leftovers, [](pid_t pid) { return !ProcessAlive(pid); });
    if (leftovers.empty()) {
      // A process of the same server may have been forked meanwhile: look once more.
      leftovers = find();
      if (leftovers.empty()) break;
      if (killed) {
        for (pid_t pid : leftovers) ::kill(pid, SIGKILL);
      }
    }
    if (std::chrono::steady_clock::now() > deadline) {
      if (killed) {
        throw std::runtime_error(fmt::format(
            "[{}] processes of a previous {} still run in {} after SIGKILL: pids {}", options_.name,
            options_.program, canonical_dir_.string(), fmt::join(leftovers, ", ")));
      }
      spdlog::warn("[{}] {} process(es) of a previous {} still running after {} ms; killing them",
                   options_.name, leftovers.size(), options_.program,
                   options_.stop_timeout.count());
      for (pid_t pid : leftovers) ::kill(pid, SIGKILL);
      killed = true;
      deadline = std::chrono::steady_clock::now() + kKillTimeout;
    }
    std::this_thread::sleep_for(20ms);
  }
  spdlog::info("[{}] the previous {} in {} is gone", options_.name, options_.program,
               canonical_dir_.string());
}

void ServerSupervisor::Spawn() {
  ChildProcessOptions child = options_.command(port_.load());
  child.log_file = options_.log_file;
  child.working_dir = options_.data_dir;
  child.new_process_group = true;  // StopLeftovers and Stop rely on it
  // Spawned by the supervisor thread, which lives as long as the child is supervised.
  child.parent_death_signal = options_.parent_death_signal;
  child.nice = options_.nice;
  child_.Start(std::move(child));
}

std::optional<ServerSupervisor::StartFailure> ServerSupervisor::WaitReady(
    std::chrono::steady_clock::time_point deadline, std::uintmax_t log_offset) {
  std::string last_error = "not answering";
  for (;;) {
    if (!child_.IsRunning()) {
      const ExitStatus exit = child_.LastExit().value_or(ExitStatus{});
      StartFailure failure;
      failure.message = fmt::format("[{}] {} exited ({}) during start on port {}; {}",
                                    options_.name, options_.program, exit.Describe(), port_.load(),
                                    DescribeLog(options_.log_file, log_offset));
      failure.port_taken = !IsPortFree(port_.load());
      if (options_.retry_reason) {
        failure.retry_reason =
            options_.retry_reason(exit, TailFile(options_.log_file, kLogTailLines, log_offset));
      }
      return failure;
    }
    last_error = options_.probe(port_.load());
    if (last_error.empty()) return std::nullopt;
    const bool stopping = StopRequested();
    if (stopping || std::chrono::steady_clock::now() > deadline) {
      child_.KillGroup(SIGKILL);
      child_.Wait();
      return StartFailure{
          .message =
              stopping
                  ? fmt::format("[{}] stopped while starting {}", options_.name, options_.program)
                  : fmt::format("[{}] {} did not become ready on port {} in {} ms ({}); {}",
                                options_.name, options_.program, port_.load(),
                                options_.start_timeout.count(), last_error,
                                DescribeLog(options_.log_file, log_offset))};
    }
    std::this_thread::sleep_for(20ms);
  }
}

void ServerSupervisor::Launch(bool first_start) {
  StopLeftovers();
  if (first_start) {
    port_ = ChoosePort();
    RecordPort(port_.load());
  }
  const auto deadline = std::chrono::steady_clock::now() + options_.start_timeout;
  for (int attempt = 1;; ++attempt) {
    if (options_.prepare) options_.prepare(port_.load());
    const std::uintmax_t log_offset = FileSize(options_.log_file);
    spdlog::debug("[{}] starting {} on port {} (attempt {})", options_.name, options_.program,
                  port_.load(), attempt);
    Spawn();
    auto failure = WaitReady(deadline, log_offset);
    if (!failure) return;
    std::string retry = std::move(failure->retry_reason);
    if (failure->port_taken) {
      if (first_start && options_.port == 0) {
        const int taken = port_.load();
        port_ = FindFreePort();
        RecordPort(port_.load());
        retry = fmt::format("port {} is taken; trying port {}", taken, port_.load());
      } else if (!first_start) {
        retry = fmt::format("port {} is taken", port_.load());  // a restart keeps its port
      }
    }
    if (retry.empty() || StopRequested() || std::chrono::steady_clock::now() > deadline) {
      throw std::runtime_error(failure->message);
    }
    spdlog::info("[{}] {} did not start ({}); trying again", options_.name, options_.program,
                 retry);
    std::this_thread::sleep_for(100ms);
    StopLeftovers();  // e.g. a backend of a killed postmaster that still holds shared memory
  }
}

void ServerSupervisor::Supervise() {
  try {
    Launch(true);
  } catch (...) {
    if (child_.IsRunning()) {
      child_.KillGroup(SIGKILL);
      child_.Wait();
    }
    std::lock_guard lock(mutex_);
    start_error_ = std::current_exception();
    started_ = true;
    changed_.notify_all();
    return;
  }
  {
    std::lock_guard lock(mutex_);
    started_ = true;
  }
  changed_.notify_all();

  auto backoff = options_.check_interval;
  while (true) {
    {
      std::unique_lock lock(mutex_);
      if (changed_.wait_for(lock, backoff, [&] { return stop_; })) break;
    }
    if (child_.IsRunning()) {
      backoff = options_.check_interval;
      continue;
    }
    const auto exit = child_.LastExit();
    spdlog::warn("[{}] {} (pid {}) died ({}); restarting it on port {}", options_.name,
                 options_.program, child_.Pid(), exit ? exit->Describe() : "unknown", port_.load());
    try {
      Launch(false);
      ++restarts_;
      backoff = options_.check_interval;
      spdlog::info("[{}] {} restarted on port {} (pid {})", options_.name, options_.program,
                   port_.load(), child_.Pid());
    } catch (const std::exception& error) {
      spdlog::error("[{}] restarting {} failed: {}", options_.name, options_.program, error.what());
      if (child_.IsRunning()) {
        child_.KillGroup(SIGKILL);
        child_.Wait();
      }
      backoff = std::min<std::chrono::milliseconds>(backoff * 2, 5s);
    }
  }
  bool kill = false;
  {
    std::lock_guard lock(mutex_);
    kill = kill_;
  }
  if (kill && child_.IsRunning()) {
    spdlog::info("[{}] killing {} (pid {}, SIGKILL)", options_.name, options_.program,
                 child_.Pid());
    child_.KillGroup(SIGKILL);
    child_.Wait();
    return;
  }
  // Graceful stop on this thread (the child's parent-death signal is tied to it).
  if (child_.IsRunning()) {
    spdlog::info("[{}] stopping {} (pid {})", options_.name, options_.program, child_.Pid());
    auto exit = child_.Stop(options_.stop_signal, options_.stop_timeout);
    spdlog::info("[{}] {} stopped ({})", options_.name, options_.program,
                 exit ? exit->Describe() : "not running");
  }
}

}  // namespace shopcqrs::devstack
