#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "cqrs/projector.h"
#include "infra/pg/connection.h"

namespace shopcqrs::adapters::pg_outbox {

// The LISTEN channel the write side notifies after its commits.
inline constexpr const char* kOutboxChannel = "shopcqrs_outbox";

// The oldest transaction on the write server that holds an xid (it holds back every reader
// bounded by pg_snapshot_xmin).
struct BlockingTransaction {
  std::uint64_t xid = 0;
  std::chrono::milliseconds age{0};  // since its transaction started
  int pid = 0;
  std::string database;
  std::string state;  // e.g. "idle in transaction"
};

// Reads the write database's outbox gap-free in commit-consistent (xid, position) order,
// bounded by the snapshot xmin (no wall-clock gap timeout): only rows of transactions that
// have finished are read, so nothing read later can sort before the checkpoint. Uses its own
// connection (not the write pool), reopened after a fault. LISTENs on kOutboxChannel and
// polls as a fallback.
class OutboxReader final : public cqrs::EventSource {
 public:
  struct Options {
    std::string conninfo;
    std::chrono::milliseconds poll_interval{500};
  };
  explicit OutboxReader(Options options);
  ~OutboxReader() override;

  cqrs::EventBatch FetchBatch(const cqrs::Checkpoint& after, std::size_t max) override;
  bool WaitForChange(std::chrono::milliseconds timeout) override;
  void Reset() override;

  // For a metric: nullopt when no transaction holds an xid. Throws on connection faults.
  std::optional<BlockingTransaction> OldestBlockingTransaction();
  // How many committed events lie after `after` (the "events behind" of a projection).
  std::int64_t CountAfter(const cqrs::Checkpoint& after);

 private:
  infra::pg::Connection& Connected();                          // mutex_ held
  void DrainNotifications(infra::pg::Connection& connection);  // mutex_ held

  Options options_;
  std::mutex mutex_;
  infra::pg::ReconnectingConnection connection_;
  std::uint64_t epoch_ = 0;  // of the write server's start the connection belongs to
  bool notified_ = false;    // a notification arrived since the last fetch
};

}  // namespace shopcqrs::adapters::pg_outbox
