#include "adapters/pg_write/commit_notifier.h"

#include <chrono>
#include <memory>

#include <spdlog/spdlog.h>

#include "infra/pg/connection.h"

namespace shopcqrs::adapters::pg_write {

CommitNotifier::CommitNotifier(std::string conninfo, std::string channel)
    : conninfo_(std::move(conninfo)), channel_(std::move(channel)) {
  thread_ = std::jthread([this](std::stop_token stop) { Run(stop); });
}

CommitNotifier::~CommitNotifier() {
  thread_.request_stop();
  signalled_.notify_all();
}

void CommitNotifier::Signal() {
  {
    std::lock_guard lock(mutex_);
    if (pending_) return;
    pending_ = true;
  }
  signalled_.notify_one();
}

void CommitNotifier::Run(std::stop_token stop) {
  std::unique_ptr<infra::pg::Connection> connection;
  const std::string sql = "SELECT pg_notify($1, '')";
  auto backoff = std::chrono::milliseconds(50);
  while (!stop.stop_requested()) {
    {
      std::unique_lock lock(mutex_);
      if (!signalled_.wait(lock, stop, [&] { return pending_; })) return;
      pending_ = false;  // commits from now on ask for the next NOTIFY
    }
    try {
      if (connection && connection->IsBroken()) connection.reset();
      if (!connection) {
        connection = std::make_unique<infra::pg::Connection>(conninfo_);
        connection->Exec("SET application_name = 'shopcqrs-commit-notifier'");
      }
      connection->Exec(sql, infra::pg::Params().Add(channel_));
      backoff = std::chrono::milliseconds(50);
    } catch (const std::exception& error) {
      spdlog::warn("commit notifier: {}", error.what());
      connection.reset();
      {
        std::lock_guard lock(mutex_);
        pending_ = true;  // try again: readers poll meanwhile
      }
      std::unique_lock lock(mutex_);
      signalled_.wait_for(lock, stop, backoff, [] { return false; });
      backoff = std::min(backoff * 2, std::chrono::milliseconds(2000));
    }
  }
}

}  // namespace shopcqrs::adapters::pg_write
