#pragma once

#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

namespace shopcqrs::adapters::pg_write {

// Wakes the outbox readers after commits: one NOTIFY on a connection of its own for every burst
// of commits, sent from a thread of its own as soon as a commit signals it.
//
// Notifying from each command's own session would cost every command a second transaction that
// takes an xid and then queues on PostgreSQL's global notify lock; under load those
// transactions convoy, and since they hold xids, they also hold back every reader bounded by
// the snapshot xmin. Here commits only set a flag: all commits that finish while a NOTIFY is in
// flight share the next one. A lost NOTIFY (connection fault) costs a reader at most its poll
// interval.
class CommitNotifier {
 public:
  CommitNotifier(std::string conninfo, std::string channel);
  ~CommitNotifier();  // stops the thread
  CommitNotifier(const CommitNotifier&) = delete;
  CommitNotifier& operator=(const CommitNotifier&) = delete;

  // A commit happened: NOTIFY soon. Never blocks on the database.
  void Signal();

 private:
  void Run(std::stop_token stop);

  std::string conninfo_;
  std::string channel_;
  std::mutex mutex_;
  std::condition_variable_any signalled_;
  bool pending_ = false;
  std::jthread thread_;
};

}  // namespace shopcqrs::adapters::pg_write
