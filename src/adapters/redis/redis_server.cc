#include "adapters/redis/redis_server.h"

#include <signal.h>

#include <fstream>
#include <stdexcept>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "adapters/local/postgres_server.h"

namespace shopcqrs::adapters::redis {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

bool IsLoopback(std::string_view bind) {
  return bind == "127.0.0.1" || bind == "::1" || bind == "localhost";
}

}  // namespace

RedisServer::RedisServer(Options options) : options_(std::move(options)) {
  if (options_.data_dir.empty()) throw std::runtime_error("RedisServer: data_dir is empty");
  data_dir_ = fs::absolute(options_.data_dir).lexically_normal();
}

RedisServer::~RedisServer() {
  try {
    Stop();
  } catch (const std::exception& e) {
    spdlog::error("[{}] stopping redis failed: {}", options_.name, e.what());
  }
}

RedisEndpoint RedisServer::Endpoint() const {
  RedisEndpoint endpoint;
  endpoint.host =
      IsLoopback(options_.bind) || options_.bind == "0.0.0.0" ? "127.0.0.1" : options_.bind;
  endpoint.port = Port();
  return endpoint;
}

bool RedisServer::IsRunning() { return child_.IsRunning(); }

int RedisServer::ChoosePort() const {
  if (options_.port > 0) return options_.port;
  std::ifstream in(data_dir_ / "port");
  int recorded = 0;
  if (in >> recorded && local::IsPortFree(recorded)) return recorded;
  return local::FindFreePort();
}

void RedisServer::Start() {
  std::lock_guard lifecycle(lifecycle_);
  if (supervisor_.joinable()) return;
  fs::create_directories(data_dir_);
  const int port = ChoosePort();
  port_ = port;
  std::ofstream(data_dir_ / "port") << port << '\n';
  {
    std::lock_guard lock(mutex_);
    stop_ = false;
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
  spdlog::info("[{}] redis-server listening on 127.0.0.1:{} (data {})", options_.name, port,
               data_dir_.string());
}

void RedisServer::Stop() {
  std::lock_guard lifecycle(lifecycle_);
  if (!supervisor_.joinable()) return;
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  changed_.notify_all();
  supervisor_.join();
}

void RedisServer::Spawn() {
  local::ChildProcessOptions child;
  child.argv = {options_.binary.string(),
                "--port",
                std::to_string(port_.load()),
                "--bind",
                options_.bind,
                "--protected-mode",
                IsLoopback(options_.bind) ? "no" : "yes",
                "--dir",
                data_dir_.string(),
                "--appendonly",
                "yes",
                "--appendfsync",
                options_.appendfsync,
                "--save",
                "",
                "--daemonize",
                "no",
                "--logfile",
                ""};
  for (const auto& [name, value] : options_.settings) {
    child.argv.push_back("--" + name);
    child.argv.push_back(value);
  }
  child.log_file = LogFile();
  child.working_dir = data_dir_;
  child.parent_death_signal = SIGKILL;  // spawned by the supervisor thread, which outlives it
  child_.Start(std::move(child));
}

void RedisServer::WaitReady() {
  const auto deadline = std::chrono::steady_clock::now() + options_.start_timeout;
  RedisClient client(RedisEndpoint{.host = "127.0.0.1",
                                   .port = port_.load(),
                                   .connect_timeout = 500ms,
                                   .command_timeout = 2000ms});
  std::string last_error = "not answering";
  while (std::chrono::steady_clock::now() < deadline) {
    if (!child_.IsRunning()) {
      const auto exit = child_.LastExit();
      throw std::runtime_error(fmt::format(
          "[{}] redis-server exited ({}) during start; last lines of {}:\n{}", options_.name,
          exit ? exit->Describe() : "unknown", LogFile().string(), local::TailFile(LogFile(), 20)));
    }
    try {
      client.Ping();  // a server still loading its AOF answers LOADING (an error reply)
      return;
    } catch (const RedisError& error) {
      last_error = error.what();
    }
    std::this_thread::sleep_for(20ms);
  }
  child_.Stop(SIGKILL, 1s);
  throw std::runtime_error(
      fmt::format("[{}] redis-server did not become ready in {} ms ({}); "
                  "last lines of {}:\n{}",
                  options_.name, options_.start_timeout.count(), last_error, LogFile().string(),
                  local::TailFile(LogFile(), 20)));
}

void RedisServer::Supervise() {
  try {
    Spawn();
    WaitReady();
  } catch (...) {
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
    spdlog::warn("[{}] redis-server died ({}); restarting it", options_.name,
                 exit ? exit->Describe() : "unknown");
    try {
      Spawn();
      WaitReady();
      ++restarts_;
      backoff = options_.check_interval;
      spdlog::info("[{}] redis-server restarted on port {}", options_.name, port_.load());
    } catch (const std::exception& error) {
      spdlog::error("[{}] restarting redis-server failed: {}", options_.name, error.what());
      child_.Stop(SIGKILL, 1s);
      backoff = std::min<std::chrono::milliseconds>(backoff * 2, 5s);
    }
  }
  // Graceful stop on this thread (the child's parent-death signal is tied to it).
  if (child_.IsRunning()) {
    auto exit = child_.Stop(SIGTERM, options_.stop_timeout);
    spdlog::info("[{}] redis-server stopped ({})", options_.name,
                 exit ? exit->Describe() : "not running");
  }
}

}  // namespace shopcqrs::adapters::redis
