#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "infra/pg/connection.h"

namespace shopcqrs::infra::pg {

// A fixed-size pool of connections to one server. Connections are opened lazily, prepared by
// `on_connect`, and replaced when they break. A write pool and a read pool are distinct
// objects with distinct configuration: nothing can borrow a write connection for a query.
class Pool {
 public:
  struct Options {
    std::string conninfo;
    int size = 8;
    std::chrono::milliseconds acquire_timeout{5000};
    std::function<void(Connection&)> on_connect;  // e.g. prepare the adapter's statements
  };

  class Lease {
   public:
    Lease(Pool* pool, std::unique_ptr<Connection> connection)
        : pool_(pool), connection_(std::move(connection)) {}
    Lease(Lease&&) = default;
    Lease& operator=(Lease&&) = delete;
    ~Lease();
    Connection& operator*() { return *connection_; }
    Connection* operator->() { return connection_.get(); }

   private:
    Pool* pool_;
    std::unique_ptr<Connection> connection_;
  };

  explicit Pool(Options options);
  // Waits for a free connection (throws ConnectionLost after acquire_timeout or when the
  // server cannot be reached).
  Lease Acquire();
  // True when a connection can be had and answers a trivial query.
  bool Ping();
  const std::string& conninfo() const { return options_.conninfo; }

 private:
  void Release(std::unique_ptr<Connection> connection);

  Options options_;
  std::mutex mutex_;
  std::condition_variable available_;
  std::vector<std::unique_ptr<Connection>> idle_;
  int open_ = 0;  // connections that exist (idle or leased)
};

}  // namespace shopcqrs::infra::pg
