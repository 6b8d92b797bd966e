#include "apps/shopcqrs/split.h"

#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <fstream>
#include <iostream>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "devstack/process.h"

namespace shopcqrs::apps {

namespace {

using namespace std::chrono_literals;

constexpr std::string_view kServing = "shopcqrs serving http://";

std::filesystem::path OwnExecutable() {
  std::error_code error;
  auto path = std::filesystem::read_symlink("/proc/self/exe", error);
  if (error) throw std::runtime_error("cannot find the shopcqrs binary: " + error.message());
  return path;
}

// The "HOST:PORT" of the last serving line written to `log` after byte `from`; "" when none.
std::string ServedAddress(const std::filesystem::path& log, std::uintmax_t from) {
  std::ifstream in(log, std::ios::binary);
  if (!in) return {};
  in.seekg(static_cast<std::streamoff>(from));
  std::string line, address;
  while (std::getline(in, line)) {
    const auto at = line.find(kServing);
    if (at == std::string::npos) continue;
    const std::string rest = line.substr(at + kServing.size());
    address = rest.substr(0, rest.find(' '));
  }
  return address;
}

std::uintmax_t SizeOf(const std::filesystem::path& file) {
  std::error_code error;
  const auto size = std::filesystem::file_size(file, error);
  return error ? 0 : size;
}

// One role's child process, started again on its address when it ends.
class RoleProcess {
 public:
  RoleProcess(std::string role, std::vector<std::string> argv, std::filesystem::path log)
      : role_(std::move(role)), argv_(std::move(argv)), log_(std::move(log)) {}

  const std::string& role() const { return role_; }
  const std::string& address() const { return address_; }
  pid_t pid() const { return child_.Pid(); }

  void Start() {
    log_offset_ = SizeOf(log_);
    devstack::ChildProcessOptions options;
    options.argv = argv_;
    options.stdout_to = devstack::ChildOutput::AppendTo(log_);
    options.stderr_to = devstack::ChildOutput::SameAsStdout();
    options.new_process_group = true;  // a terminal's Ctrl-C reaches `up`, which stops us
    options.parent_death_signal = SIGTERM;
    child_.Start(std::move(options));
    started_at_ = std::chrono::steady_clock::now();
  }

  // Waits for the serving line; the first time, the address it serves on is kept (a restart
  // serves there again).
  void WaitUntilServing(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
      const std::string address = ServedAddress(log_, log_offset_);
      if (!address.empty()) {
        if (address_.empty()) SetAddress(address);
        return;
      }
      if (!child_.IsRunning()) {
        throw std::runtime_error(fmt::format("the {} process ended ({}) before serving; see {}",
                                             role_, child_.LastExit()->Describe(), log_.string()));
      }
      if (std::chrono::steady_clock::now() >= deadline) {
        child_.Stop(SIGKILL, 1s);
        throw std::runtime_error(
            fmt::format("the {} process did not serve in time; see {}", role_, log_.string()));
      }
      std::this_thread::sleep_for(20ms);
    }
  }

  // Starts it again if it ended and its backoff has passed. Called by the supervisor.
  void Supervise() {
    const auto now = std::chrono::steady_clock::now();
    if (!restart_at_) {
      if (child_.IsRunning()) return;
      const bool quick = now - started_at_ < 10s;
      backoff_ = quick ? std::min<std::chrono::milliseconds>(backoff_ * 2, 10s) : 1s;
      restart_at_ = now + backoff_;
      spdlog::warn("the {} process ({}) ended ({}); starting it again in {} ms", role_,
                   child_.Pid(), child_.LastExit() ? child_.LastExit()->Describe() : "?",
                   backoff_.count());
      return;
    }
    if (now < *restart_at_) return;
    restart_at_.reset();
    try {
      Start();
      spdlog::info("the {} process started again (pid {})", role_, child_.Pid());
    } catch (const std::exception& error) {
      spdlog::error("the {} process could not be started: {}", role_, error.what());
      started_at_ = now;
    }
  }

  void Stop() { child_.Stop(SIGTERM, 15s); }

 private:
  void SetAddress(const std::string& address) {
    address_ = address;
    // Restarts serve on the same address.
    for (std::size_t i = 0; i + 1 < argv_.size(); ++i) {
      if (argv_[i] == "--listen") argv_[i + 1] = address;
    }
  }

  std::string role_;
  std::vector<std::string> argv_;
  std::filesystem::path log_;
  std::uintmax_t log_offset_ = 0;
  std::string address_;
  devstack::ChildProcess child_;
  std::chrono::steady_clock::time_point started_at_{};
  std::chrono::milliseconds backoff_{500};
  std::optional<std::chrono::steady_clock::time_point> restart_at_;
};

}  // namespace

std::filesystem::path WriteConfigFile(const Config& config, const std::filesystem::path& root,
                                      const std::string& name) {
  const auto file = root / name;
  {
    std::ofstream out(file, std::ios::trunc);
    out << ConfigToml(config);
    if (!out) throw std::runtime_error("cannot write " + file.string());
  }
  std::filesystem::permissions(
      file, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  return file;
}

int ServeSplit(const Config& config, const std::filesystem::path& root, const sigset_t& signals,
               const SplitOptions& split) {
  if (split.query_processes < 1) throw std::runtime_error("--query-processes must be at least 1");
  auto listen = ParseListenAddress(config.listen);
  if (!listen) throw std::runtime_error(listen.error());
  // The children's configuration files: everything but the roles (each gets its own) and the
  // address. Read server k > 1: its own file, and its projector's without Redis (the first
  // projector feeds the one Redis).
  std::vector<std::string> read_dbs{config.read_db};
  read_dbs.insert(read_dbs.end(), split.more_read_dbs.begin(), split.more_read_dbs.end());
  std::vector<std::filesystem::path> query_files, projector_files;
  for (std::size_t k = 0; k < read_dbs.size(); ++k) {
    Config on = config;
    on.read_db = read_dbs[k];
    const std::string suffix = k == 0 ? "" : fmt::format("-read-{}", k + 1);
    query_files.push_back(WriteConfigFile(on, root, "split" + suffix + ".toml"));
    if (k > 0) {
      on.redis.clear();
      if (on.query_source == "redis") on.query_source = "read";
      projector_files.push_back(WriteConfigFile(on, root, "split" + suffix + "-projector.toml"));
    } else {
      projector_files.push_back(query_files.back());
    }
  }
  const auto logs = root / "logs";
  std::filesystem::create_directories(logs);
  const std::string exe = OwnExecutable().string();
  const std::string host =
      listen->host.find(':') != std::string::npos ? "[" + listen->host + "]" : listen->host;

  std::vector<std::unique_ptr<RoleProcess>> children;
  std::vector<std::string> reads;  // which read server each child uses ("" when none)
  int offset = 0;
  for (const std::string_view role : kRoles) {
    const bool per_server = role == "projector";
    const int count = role == "query" ? split.query_processes
                      : per_server    ? static_cast<int>(read_dbs.size())
                                      : 1;
    for (int i = 0; i < count; ++i) {
      const int port = listen->port == 0 ? 0 : listen->port + offset++;
      const std::size_t server = static_cast<std::size_t>(i) % read_dbs.size();
      const auto& file = role == "query" ? query_files[server]
                         : per_server    ? projector_files[server]
                                         : query_files[0];
      const std::string log_name =
          count == 1 ? std::string(role) : fmt::format("{}-{}", role, i + 1);
      children.push_back(std::make_unique<RoleProcess>(
          std::string(role),
          std::vector<std::string>{exe, "serve", "--config", file.string(), "--role",
                                   std::string(role), "--listen", fmt::format("{}:{}", host, port)},
          logs / (log_name + ".log")));
      reads.push_back(role == "query" || per_server ? fmt::format("{}", server + 1) : "");
    }
  }
  auto stop_all = [&] {
    // Commands and queries first, so no request is cut off by a stopping relay or projector.
    for (auto& child : children) child->Stop();
  };
  try {
    for (auto& child : children) child->Start();
    for (auto& child : children) child->WaitUntilServing(60s);
  } catch (...) {
    stop_all();
    throw;
  }
  std::cout << fmt::format("shopcqrs up --split: each role in its own process (logs in {})",
                           logs.string())
            << std::endl;
  for (auto& child : children) {
    std::cout << fmt::format("shopcqrs serving http://{} (roles {}, pid {})", child->address(),
                             child->role(), child->pid())
              << std::endl;
  }
  if (read_dbs.size() > 1) {
    for (std::size_t i = 0; i < children.size(); ++i) {
      if (reads[i].empty()) continue;
      std::cout << fmt::format("  {} http://{} uses read PostgreSQL {}", children[i]->role(),
                               children[i]->address(), reads[i])
                << std::endl;
    }
  }

  std::mutex mutex;
  std::condition_variable wake;
  bool stopping = false;
  std::thread supervisor([&] {
    std::unique_lock lock(mutex);
    while (!wake.wait_for(lock, 200ms, [&] { return stopping; })) {
      for (auto& child : children) child->Supervise();
    }
  });
  int signal = 0;
  sigwait(&signals, &signal);
  spdlog::info("received {}, stopping the role processes", signal == SIGINT ? "SIGINT" : "SIGTERM");
  {
    std::lock_guard lock(mutex);
    stopping = true;
  }
  wake.notify_all();
  supervisor.join();
  stop_all();
  return 0;
}

}  // namespace shopcqrs::apps
