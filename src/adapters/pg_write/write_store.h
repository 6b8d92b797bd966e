#pragma once

#include <memory>
#include <string>

#include "adapters/pg_write/commit_notifier.h"
#include "application/ports.h"
#include "cqrs/consistency_token.h"
#include "infra/pg/pool.h"

namespace shopcqrs::adapters::pg_write {

// Pool options for the write database: its statements are prepared on every connection.
infra::pg::Pool::Options WritePoolOptions(std::string conninfo, int size);

// The write side's store on PostgreSQL. Each transaction costs few round trips: statements
// queued before a load travel with it in one pipeline, and every write of a command travels
// with COMMIT (and the consistency-token query after it) in a single pipeline.
class PgWriteStore final : public app::WriteStore {
 public:
  // Commits wake the outbox readers through a CommitNotifier of the store's own (one
  // connection on the pool's conninfo, channel pg_outbox::kOutboxChannel).
  PgWriteStore(infra::pg::Pool& pool, const cqrs::ConsistencyTokens& tokens);
  ~PgWriteStore() override;
  std::unique_ptr<app::WriteTransaction> Begin() override;
  std::string CurrentToken() override;

 private:
  infra::pg::Pool& pool_;
  const cqrs::ConsistencyTokens& tokens_;
  std::unique_ptr<CommitNotifier> notifier_;
};

}  // namespace shopcqrs::adapters::pg_write
