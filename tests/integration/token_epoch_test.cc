// Consistency tokens across a crash of the write server: transactions that took an xid and
// rolled back just before the crash leave nothing durable, so recovery may hand their xids out
// again -- below commit bounds that read stores already hold. A token issued after the crash
// must still wait for its own command.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "adapters/pg_outbox/outbox_reader.h"
#include "application/commands.h"
#include "cqrs/commit_bound.h"
#include "devstack/postgres_server.h"
#include "infra/pg/connection.h"
#include "infra/pg/migrator.h"
#include "support/eventually.h"
#include "support/sql.h"
#include "support/temp_dir.h"
#include "support/workload.h"

namespace shopcqrs {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// Every process of the server at once (postmaster and children), as a power loss would: WAL
// still in shared buffers is gone.
void KillServer(pid_t postmaster) {
  std::vector<pid_t> children;
  for (const auto& entry : fs::directory_iterator("/proc")) {
    const auto name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream stat(entry.path() / "stat");
    std::string line;
    std::getline(stat, line);
    const auto close = line.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(line.substr(close + 2));
    char state = 0;
    pid_t parent = 0;
    rest >> state >> parent;
    if (parent == postmaster) children.push_back(static_cast<pid_t>(std::stoi(name)));
  }
  ::kill(postmaster, SIGSTOP);  // no new children meanwhile
  for (const pid_t child : children) ::kill(child, SIGKILL);
  ::kill(postmaster, SIGKILL);
}

std::string TokenOf(test_support::Workload& load, const std::string& name) {
  auto r = load.commands.Handle(app::RegisterCustomer{name, name + "@example.com"});
  EXPECT_TRUE(r.has_value());
  return r ? r->consistency_token : std::string();
}

TEST(ConsistencyTokens, ATokenIssuedAfterAWriteServerCrashWaitsForItsCommand) {
  const test_support::TempDir root("shopcqrs-epoch-test-");
  devstack::PostgresServer::Options options;
  options.data_dir = root.Path() / "data";
  options.name = "epoch";
  options.fsync = true;  // as durable as `up` runs it
  // Aborted transactions' WAL stays in shared buffers until something flushes it.
  options.settings = {{"shared_buffers", "16MB"}, {"wal_writer_delay", "10s"}};
  options.stop_with_parent = true;
  devstack::PostgresServer server(options);
  server.Start();
  const auto write = server.ConnectionString();
  infra::pg::ApplyMigrations(write, "pg_write");

  cqrs::ConsistencyTokens tokens;
  std::uint64_t store_bound = 0;
  {
    test_support::Workload load(write);
    ASSERT_FALSE(TokenOf(load, "before").empty());
    // xids handed out, then rolled back: nothing of them is flushed.
    infra::pg::Connection c(write);
    std::uint64_t last_xid = 0;
    for (int i = 0; i < 300; ++i) {
      c.Exec("BEGIN");
      last_xid = static_cast<std::uint64_t>(
          c.Exec("SELECT pg_current_xact_id()::text::bigint").Int64(0, 0));
      c.Exec("ROLLBACK");
    }
    // A read store that has applied everything so far holds the reader's bound -- once it is
    // past the rolled-back xids (a transaction of the commit notifier still open when the reader
    // looks holds the bound back).
    adapters::pg_outbox::OutboxReader reader({write});
    ASSERT_TRUE(test_support::Eventually(
        [&] {
          store_bound = reader.FetchBatch({}, 100000).next.bound;
          return cqrs::BoundXid(store_bound) > last_xid;
        },
        10s, 5ms))
        << "the reader's bound never passed the rolled-back xids";
    KillServer(server.Pid());
  }
  // The supervisor starts it again (crash recovery replays the WAL).
  ASSERT_TRUE(test_support::Eventually(
      [&] { return server.Restarts() >= 1 && test_support::Connects(write); }, 60s, 50ms))
      << "the server did not come back";

  test_support::Workload load(write);
  const auto token = tokens.Decode(TokenOf(load, "after"));
  ASSERT_TRUE(token);
  // The crash handed out xids again that the store's bound already covers...
  const auto xid = static_cast<std::uint64_t>(test_support::Scalar(
      write, "SELECT max(xid::text::bigint) FROM outbox WHERE event_type = 'CustomerRegistered'"));
  EXPECT_LT(xid, cqrs::BoundXid(store_bound)) << "no xid was reused; the test shows nothing";
  // ...but the new token is not satisfied by that bound: it waits for a store that has read
  // the new command.
  EXPECT_GT(*token, store_bound) << "a token issued after the crash is satisfied by a bound from "
                                    "before it (token "
                                 << *token << ", store " << store_bound << ")";
  server.Stop();
}

}  // namespace
}  // namespace shopcqrs
