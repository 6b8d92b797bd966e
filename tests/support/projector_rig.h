#pragma once

// Projectors wired like the binary does, for integration tests of the read side.

#include <chrono>
#include <cstddef>
#include <string>
#include <utility>

#include <gtest/gtest.h>

#include "adapters/pg_outbox/outbox_reader.h"
#include "cqrs/projector.h"
#include "support/sql.h"

namespace shopcqrs::test_support {

// An event source, a projection store, and a projector between them reporting to `tracker`.
// The projector runs from construction until destruction.
template <class Source, class Store>
struct ProjectorRig {
  template <class StoreArg>
  ProjectorRig(typename Source::Options source_options, StoreArg&& store_arg,
               cqrs::Projector::Options options)
      : source(std::move(source_options)),
        store(std::forward<StoreArg>(store_arg)),
        projector(std::move(options), source, store, &tracker) {
    projector.Start();
  }

  // Waits until the projector has applied every transaction committed to `write` so far.
  void WaitCaughtUp(const std::string& write,
                    std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
    const auto bound = WriteBound(write);
    ASSERT_TRUE(tracker.WaitFor(bound, timeout))
        << projector.name() << ": bound " << tracker.Bound() << " < " << bound << " "
        << projector.Stats().last_error;
  }

  Source source;
  Store store;
  cqrs::ProgressTracker tracker;
  cqrs::Projector projector;
};

// A projection of the read database (e.g. adapters::pg_read::PgReadProjection) fed from the
// outbox of the write database.
template <class Store>
struct OutboxRig : ProjectorRig<adapters::pg_outbox::OutboxReader, Store> {
  OutboxRig(const std::string& write, const std::string& read, std::string name,
            std::size_t batch = 500)
      : ProjectorRig<adapters::pg_outbox::OutboxReader, Store>(
            {write}, read,
            {.name = std::move(name),
             .batch_size = batch,
             .max_backoff = std::chrono::milliseconds(500)}) {}
};

// Runs the projection `name` (e.g. PgReadProjection "read_pg") of `db`'s read database until
// it has applied everything committed to its write database so far, then stops it.
template <class Store>
void CatchUp(const Databases& db, std::string name) {
  OutboxRig<Store> rig(db.write, db.read, std::move(name));
  rig.WaitCaughtUp(db.write);
}

}  // namespace shopcqrs::test_support
