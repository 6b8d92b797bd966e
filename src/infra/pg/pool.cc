#include "infra/pg/pool.h"

namespace shopcqrs::infra::pg {

Pool::Lease::~Lease() {
  if (pool_ && connection_) pool_->Release(std::move(connection_));
}

Pool::Pool(Options options) : options_(std::move(options)) {}

Pool::Lease Pool::Acquire() {
  {
    std::unique_lock lock(mutex_);
    const bool ready = available_.wait_for(lock, options_.acquire_timeout,
                                           [&] { return !idle_.empty() || open_ < options_.size; });
    if (!ready) throw ConnectionLost("timed out waiting for a database connection");
    if (!idle_.empty()) {
      auto connection = std::move(idle_.back());
      idle_.pop_back();
      return Lease(this, std::move(connection));
    }
    ++open_;  // reserve a slot, then connect outside the lock
  }
  try {
    auto connection = std::make_unique<Connection>(options_.conninfo);
    if (options_.on_connect) options_.on_connect(*connection);
    return Lease(this, std::move(connection));
  } catch (...) {
    std::lock_guard lock(mutex_);
    --open_;
    available_.notify_one();
    throw;
  }
}

void Pool::Release(std::unique_ptr<Connection> connection) {
  // A connection left inside a transaction or in pipeline mode is not trusted again.
  if (!connection->IsBroken() && connection->InTransaction()) {
    try {
      connection->Exec("ROLLBACK");
    } catch (...) {
      connection.reset();
    }
  }
  std::lock_guard lock(mutex_);
  if (connection && !connection->IsBroken()) {
    idle_.push_back(std::move(connection));
  } else {
    --open_;
  }
  available_.notify_one();
}

bool Pool::Ping() {
  try {
    auto lease = Acquire();
    lease->Exec("SELECT 1");
    return true;
  } catch (...) {
    return false;
  }
}

}  // namespace shopcqrs::infra::pg
