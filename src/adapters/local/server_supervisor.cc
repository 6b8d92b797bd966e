#include "adapters/local/server_supervisor.h"

#include <signal.h>

#include <algorithm>
#include <fstream>
#include <stdexcept>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "adapters/local/postgres_server.h"

namespace shopcqrs::adapters::local {

using namespace std::chrono_literals;

ServerSupervisor::ServerSupervisor(Options options) : options_(std::move(options)) {
  if (options_.data_dir.empty()) {
    throw std::runtime_error(fmt::format("{}: data_dir is empty", options_.program));
  }
  options_.data_dir = std::filesystem::absolute(options_.data_dir).lexically_normal();
}

ServerSupervisor::~ServerSupervisor() {
  try {
    Stop();
  } catch (const std::exception& e) {
    spdlog::error("[{}] stopping {} failed: {}", options_.name, options_.program, e.what());
  }
}

bool ServerSupervisor::IsRunning() { return child_.IsRunning(); }

int ServerSupervisor::ChoosePort() const {
  if (options_.port > 0) return options_.port;
  std::ifstream in(options_.data_dir / "port");
  int recorded = 0;
  if (in >> recorded && recorded > 0 && IsPortFree(recorded)) return recorded;
  return FindFreePort();
}

void ServerSupervisor::Start() {
  std::lock_guard lifecycle(lifecycle_);
  if (supervisor_.joinable()) return;
  std::filesystem::create_directories(options_.data_dir);
  const int port = ChoosePort();
  port_ = port;
  std::ofstream(options_.data_dir / "port") << port << '\n';
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

void ServerSupervisor::Spawn() {
  ChildProcessOptions child = options_.command(port_.load());
  child.log_file = options_.log_file;
  child.working_dir = options_.data_dir;
  child.parent_death_signal = SIGKILL;  // spawned by the supervisor thread, which outlives it
  child_.Start(std::move(child));
}

void ServerSupervisor::WaitReady() {
  const auto deadline = std::chrono::steady_clock::now() + options_.start_timeout;
  std::string last_error = "not answering";
  while (std::chrono::steady_clock::now() < deadline) {
    if (!child_.IsRunning()) {
      const auto exit = child_.LastExit();
      throw std::runtime_error(
          fmt::format("[{}] {} exited ({}) during start; last lines of {}:\n{}", options_.name,
                      options_.program, exit ? exit->Describe() : "unknown",
                      options_.log_file.string(), TailFile(options_.log_file, 20)));
    }
    last_error = options_.probe(port_.load());
    if (last_error.empty()) return;
    std::this_thread::sleep_for(20ms);
  }
  child_.Stop(SIGKILL, 1s);
  throw std::runtime_error(
      fmt::format("[{}] {} did not become ready in {} ms ({}); last lines of {}:\n{}",
                  options_.name, options_.program, options_.start_timeout.count(), last_error,
                  options_.log_file.string(), TailFile(options_.log_file, 20)));
}

void ServerSupervisor::Supervise() {
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
    spdlog::warn("[{}] {} died ({}); restarting it", options_.name, options_.program,
                 exit ? exit->Describe() : "unknown");
    try {
      Spawn();
      WaitReady();
      ++restarts_;
      backoff = options_.check_interval;
      spdlog::info("[{}] {} restarted on port {}", options_.name, options_.program, port_.load());
    } catch (const std::exception& error) {
      spdlog::error("[{}] restarting {} failed: {}", options_.name, options_.program, error.what());
      child_.Stop(SIGKILL, 1s);
      backoff = std::min<std::chrono::milliseconds>(backoff * 2, 5s);
    }
  }
  // Graceful stop on this thread (the child's parent-death signal is tied to it).
  if (child_.IsRunning()) {
    auto exit = child_.Stop(SIGTERM, options_.stop_timeout);
    spdlog::info("[{}] {} stopped ({})", options_.name, options_.program,
                 exit ? exit->Describe() : "not running");
  }
}

}  // namespace shopcqrs::adapters::local
