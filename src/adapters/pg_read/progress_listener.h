#pragma once

#include <chrono>
#include <string>
#include <thread>

#include "adapters/pg_read/projection.h"
#include "cqrs/projector.h"
#include "infra/pg/connection.h"

namespace shopcqrs::adapters::pg_read {

// Follows a projection's progress from another process: LISTENs on kProgressChannel of the
// read database (raising the bound each notification names) and re-reads the checkpoint on
// every (re)connection and every `poll_interval`, *setting* the tracker to the stored bound,
// lower too: a store that lost a suffix makes waiting queries wait again. Reconnects on its own.
// The projection's parked events (dead letters) are reloaded into the tracker whenever the
// notified dead-letter generation changes, and on every poll, before the bound is taken.
class ProgressListener {
 public:
  ProgressListener(std::string conninfo, cqrs::ProgressTracker& tracker,
                   std::string name = kProjectionName,
                   std::chrono::milliseconds poll_interval = std::chrono::milliseconds(1000));
  ~ProgressListener() = default;  // the thread is asked to stop and joined
  ProgressListener(const ProgressListener&) = delete;
  ProgressListener& operator=(const ProgressListener&) = delete;

 private:
  void Run(std::stop_token stop);
  // Loads the parked events into the tracker unless `generation` is the one loaded last.
  void Reload(infra::pg::Connection& connection, std::uint64_t generation, bool always);

  std::string conninfo_;
  cqrs::ProgressTracker& tracker_;
  std::string name_;
  std::chrono::milliseconds poll_interval_;
  std::uint64_t loaded_generation_ = 0;  // the listener's thread only
  std::jthread thread_;                  // last: started once the fields it reads are set
};

}  // namespace shopcqrs::adapters::pg_read
