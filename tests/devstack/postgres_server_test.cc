// Real PostgreSQL servers and child processes; runs as root or as a normal user.
#include "devstack/postgres_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libpq-fe.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "devstack/process.h"
#include "support/eventually.h"
#include "support/temp_dir.h"
#include "support/test_postgres.h"

namespace shopcqrs::devstack {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using test_support::Eventually;
using test_support::TempDir;
using ::testing::HasSubstr;

std::string ReadFile(const fs::path& file) {
  std::ifstream in(file);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Runs one query and returns the first column of the first row; nullopt on any failure.
std::optional<std::string> QueryValue(const std::string& conninfo, const std::string& sql) {
  std::unique_ptr<PGconn, decltype(&PQfinish)> conn(PQconnectdb(conninfo.c_str()), &PQfinish);
  if (PQstatus(conn.get()) != CONNECTION_OK) return std::nullopt;
  std::unique_ptr<PGresult, decltype(&PQclear)> res(PQexec(conn.get(), sql.c_str()), &PQclear);
  auto status = PQresultStatus(res.get());
  if (status == PGRES_COMMAND_OK) return std::string();
  if (status != PGRES_TUPLES_OK || PQntuples(res.get()) < 1) return std::nullopt;
  return std::string(PQgetvalue(res.get(), 0, 0));
}

// Runs one query and returns the first column of every row; nullopt on any failure.
std::optional<std::vector<std::string>> QueryColumn(const std::string& conninfo,
                                                    const std::string& sql) {
  std::unique_ptr<PGconn, decltype(&PQfinish)> conn(PQconnectdb(conninfo.c_str()), &PQfinish);
  if (PQstatus(conn.get()) != CONNECTION_OK) return std::nullopt;
  std::unique_ptr<PGresult, decltype(&PQclear)> res(PQexec(conn.get(), sql.c_str()), &PQclear);
  if (PQresultStatus(res.get()) != PGRES_TUPLES_OK) return std::nullopt;
  std::vector<std::string> values;
  for (int row = 0; row < PQntuples(res.get()); ++row)
    values.emplace_back(PQgetvalue(res.get(), row, 0));
  return values;
}

PostgresServer::Options TestOptions(const fs::path& data_dir) {
  PostgresServer::Options options;
  options.data_dir = data_dir;
  options.name = "test";
  options.fsync = false;
  options.settings = {{"shared_buffers", "16MB"}, {"max_connections", "20"}};
  options.stop_with_parent = true;
  return options;
}

class PostgresServerTest : public ::testing::Test {
 protected:
  TempDir dir_{"shopcqrs-pgserver-test-"};
  fs::path data_dir_ = dir_.Path() / "pg";
};

TEST_F(PostgresServerTest, StartsServesStopsAndRestartsOnTheSamePortWithItsData) {
  PostgresServer server(TestOptions(data_dir_));
  server.Start();
  ASSERT_TRUE(server.IsRunning());
  const int port = server.Port();
  EXPECT_GT(port, 0);
  EXPECT_EQ(server.ConnectionString(),
            fmt::format("host=127.0.0.1 port={} dbname=shopcqrs user=postgres", port));
  EXPECT_EQ(QueryValue(server.ConnectionString(), "SELECT 1"), "1");
  EXPECT_EQ(QueryValue(server.ConnectionString(), "SELECT current_database()"), "shopcqrs");
  EXPECT_EQ(QueryValue(server.ConnectionString(), "SHOW fsync"), "off");
  EXPECT_EQ(QueryValue(server.ConnectionString(), "SHOW shared_buffers"), "16MB");
  EXPECT_EQ(QueryValue(server.ConnectionString(), "SHOW listen_addresses"), "127.0.0.1");
  ASSERT_TRUE(QueryValue(server.ConnectionString(), "CREATE TABLE kept (v int)"));
  ASSERT_TRUE(QueryValue(server.ConnectionString(), "INSERT INTO kept VALUES (42)"));
  EXPECT_THAT(ReadFile(data_dir_ / "shopcqrs.conf"), HasSubstr(fmt::format("port = {}", port)));
  server.Start();  // no-op while running
  EXPECT_EQ(server.Port(), port);

  server.Stop();
  EXPECT_FALSE(server.IsRunning());
  EXPECT_FALSE(fs::exists(data_dir_ / "postmaster.pid"));
  EXPECT_NE(PQping(server.ConnectionString().c_str()), PQPING_OK);
  server.Stop();  // idempotent

  server.Start();
  EXPECT_EQ(server.Port(), port);
  EXPECT_EQ(QueryValue(server.ConnectionString(), "SELECT v FROM kept"), "42");

  // A new object on the same data dir reuses the recorded port too.
  server.Stop();
  PostgresServer again(TestOptions(data_dir_));
  again.Start();
  EXPECT_EQ(again.Port(), port);
  EXPECT_EQ(QueryValue(again.ConnectionString(), "SELECT v FROM kept"), "42");
}

// kill -9 of the postmaster while clients write: the supervisor starts it again on the same
// port (after its orphaned backends are gone), crash recovery replays the WAL, and with fsync on
// every row whose COMMIT was acknowledged is there.
TEST_F(PostgresServerTest, KilledPostmasterIsRestartedOnItsPortWithEveryAcknowledgedRow) {
  auto options = TestOptions(data_dir_);
  options.fsync = true;
  PostgresServer server(options);
  server.Start();
  const int port = server.Port();
  const pid_t killed = server.Pid();
  const std::string conninfo = server.ConnectionString() + " connect_timeout=2";
  ASSERT_EQ(QueryValue(conninfo, "SHOW fsync"), "on");
  ASSERT_TRUE(
      QueryValue(conninfo, "CREATE TABLE acked (writer int, n int, PRIMARY KEY (writer, n))"));

  constexpr int kWriters = 3;
  std::atomic<bool> stop = false;
  std::atomic<int> acknowledged = 0;
  std::vector<std::vector<int>> acked(kWriters);  // each writer's own
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      std::unique_ptr<PGconn, decltype(&PQfinish)> conn(nullptr, &PQfinish);
      for (int n = 0; !stop; ++n) {  // a new n per attempt: a lost answer may have committed
        if (!conn || PQstatus(conn.get()) != CONNECTION_OK) {
          conn.reset(PQconnectdb(conninfo.c_str()));
          if (PQstatus(conn.get()) != CONNECTION_OK) {
            std::this_thread::sleep_for(20ms);
            continue;
          }
          // Quiet: "terminating connection due to unexpected postmaster exit".
          PQsetNoticeProcessor(
              conn.get(), [](void*, const char*) {}, nullptr);
        }
        const std::string sql = fmt::format("INSERT INTO acked VALUES ({}, {})", w, n);
        std::unique_ptr<PGresult, decltype(&PQclear)> res(PQexec(conn.get(), sql.c_str()),
                                                          &PQclear);
        if (PQresultStatus(res.get()) == PGRES_COMMAND_OK) {
          acked[static_cast<std::size_t>(w)].push_back(n);
          ++acknowledged;
        } else {
          conn.reset();
        }
      }
    });
  }
  ASSERT_TRUE(Eventually([&] { return acknowledged >= 60; }, 30s));

  ASSERT_EQ(::kill(killed, SIGKILL), 0);
  const bool restarted = Eventually(
      [&] { return server.Restarts() >= 1 && QueryValue(conninfo, "SELECT 1") == "1"; }, 60s);
  const int before = acknowledged;
  // The writers get through again.
  const bool writing = Eventually([&] { return acknowledged >= before + 30; }, 30s);
  stop = true;
  for (auto& writer : writers) writer.join();
  ASSERT_TRUE(restarted) << "not serving again; " << TailFile(server.LogFile(), 30);
  EXPECT_TRUE(writing);
  EXPECT_EQ(server.Restarts(), 1);
  EXPECT_TRUE(server.IsRunning());
  EXPECT_EQ(server.Port(), port);
  EXPECT_NE(server.Pid(), killed);
  const std::string pid_file = ReadFile(data_dir_ / "postmaster.pid");
  EXPECT_EQ(pid_file.substr(0, pid_file.find('\n')), std::to_string(server.Pid()));

  for (int w = 0; w < kWriters; ++w) {
    const auto rows =
        QueryColumn(conninfo, fmt::format("SELECT n FROM acked WHERE writer = {}", w));
    ASSERT_TRUE(rows);
    const std::set<std::string> stored(rows->begin(), rows->end());
    int missing = 0;
    for (int n : acked[static_cast<std::size_t>(w)]) missing += !stored.contains(std::to_string(n));
    EXPECT_EQ(missing, 0) << "writer " << w << " lost acknowledged rows";
  }
  server.Stop();
  EXPECT_FALSE(server.IsRunning());
}

TEST_F(PostgresServerTest, IgnoresAPidFileNamingAnUnrelatedLiveProcess) {
  PostgresServer server(TestOptions(data_dir_));
  server.Start();
  server.Stop();

  ChildProcess sleeper;  // a live process whose pid the stale file names
  sleeper.Start({.argv = {"sleep", "60"}});
  {
    std::ofstream pid_file(data_dir_ / "postmaster.pid");
    pid_file << sleeper.Pid() << "\n" << data_dir_.string() << "\n";
  }
  server.Start();
  EXPECT_EQ(QueryValue(server.ConnectionString(), "SELECT 1"), "1");
  sleeper.Stop(SIGKILL, 1s);
}

// Body of the child process of the leftover tests (skipped when run normally): a predecessor,
// like a `shopcqrs up` that will be killed -9, whose server is made to outlive it.
TEST(PostgresServerChild, RunsUntilKilled) {
  const char* data_dir = std::getenv("SHOPCQRS_CHILD_PG_DIR");
  const char* ready = std::getenv("SHOPCQRS_CHILD_READY");
  if (!data_dir || !ready) GTEST_SKIP() << "only run as a child of the leftover tests";
  auto options = TestOptions(data_dir);
  options.stop_with_parent = false;  // it survives this process, as a leftover
  PostgresServer server(options);
  server.Start();
  ASSERT_TRUE(QueryValue(server.ConnectionString(), "CREATE TABLE kept (v int)"));
  ASSERT_TRUE(
      QueryValue(server.ConnectionString(), "INSERT INTO kept SELECT generate_series(1, 100)"));
  {
    std::ofstream out(std::string(ready) + ".tmp");
    out << server.Port() << ' ' << server.Pid() << '\n';
  }
  fs::rename(std::string(ready) + ".tmp", ready);
  std::this_thread::sleep_for(120s);
}

struct Leftover {
  int port = 0;
  pid_t postmaster = 0;
};

// Runs a PostgresServer on `data_dir` in a child process, waits until it has written its rows,
// and kills the child with SIGKILL: its postmaster survives, serving the data dir, unsupervised.
Leftover LeaveAServerRunning(const fs::path& data_dir, const fs::path& work_dir) {
  const fs::path ready = work_dir / "child-ready";
  ChildProcessOptions options;
  options.argv = {fs::read_symlink("/proc/self/exe").string(),
                  "--gtest_filter=PostgresServerChild.RunsUntilKilled"};
  options.env = {{"SHOPCQRS_CHILD_PG_DIR", data_dir.string()},
                 {"SHOPCQRS_CHILD_READY", ready.string()}};
  options.log_file = work_dir / "child.log";
  ChildProcess child;
  child.Start(options);
  const bool started =
      Eventually([&] { return fs::exists(ready) || !child.IsRunning(); }, 90s) && fs::exists(ready);
  child.Kill(SIGKILL);
  child.Wait(10s);
  if (!started) {
    throw std::runtime_error("the child did not start its server:\n" +
                             TailFile(work_dir / "child.log", 30));
  }
  Leftover leftover;
  std::ifstream(ready) >> leftover.port >> leftover.postmaster;
  return leftover;
}

// Kills what a failed test leaves behind.
struct KillAtExit {
  pid_t pid;
  ~KillAtExit() {
    if (ProcessAlive(pid)) ::kill(pid, SIGKILL);
  }
};

// A server left running by a killed predecessor is shut down cleanly (not adopted) and started
// again under the new supervisor, on its port and with its data, and is supervised from then on.
TEST_F(PostgresServerTest, StopsTheServerOfAKilledPredecessorAndSupervisesItAgain) {
  const Leftover leftover = LeaveAServerRunning(data_dir_, dir_.Path());
  KillAtExit cleanup{leftover.postmaster};
  ASSERT_TRUE(ProcessAlive(leftover.postmaster));
  const std::string leftover_conninfo =
      fmt::format("host=127.0.0.1 port={} dbname=shopcqrs user=postgres", leftover.port);
  ASSERT_EQ(QueryValue(leftover_conninfo, "SELECT count(*) FROM kept"), "100");

  const auto log_offset = fs::file_size(data_dir_ / "server.log");
  PostgresServer server(TestOptions(data_dir_));
  server.Start();
  EXPECT_FALSE(ProcessAlive(leftover.postmaster));
  EXPECT_NE(server.Pid(), leftover.postmaster);
  EXPECT_EQ(server.Port(), leftover.port);
  EXPECT_EQ(QueryValue(server.ConnectionString(), "SELECT count(*) FROM kept"), "100");
  // Shut down cleanly (fast shutdown), so no crash recovery was needed.
  EXPECT_THAT(TailFile(data_dir_ / "server.log", 200, log_offset),
              HasSubstr("database system was shut down at"));

  // From now on it is supervised like any other.
  const pid_t pid = server.Pid();
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  EXPECT_TRUE(Eventually(
      [&] {
        return server.Restarts() == 1 &&
               QueryValue(server.ConnectionString(), "SELECT count(*) FROM kept") == "100";
      },
      60s))
      << TailFile(server.LogFile(), 30);
  EXPECT_EQ(server.Port(), leftover.port);
  EXPECT_NE(server.Pid(), pid);
}

// A leftover that does not react to the fast-shutdown request (here: stopped with SIGSTOP) is
// killed after stop_timeout, and the server starts after crash recovery.
TEST_F(PostgresServerTest, KillsAHungLeftoverAfterTheStopTimeout) {
  const Leftover leftover = LeaveAServerRunning(data_dir_, dir_.Path());
  KillAtExit cleanup{leftover.postmaster};
  ASSERT_EQ(::kill(leftover.postmaster, SIGSTOP), 0);

  auto options = TestOptions(data_dir_);
  options.stop_timeout = 2s;
  PostgresServer server(options);
  const auto started = std::chrono::steady_clock::now();
  server.Start();
  EXPECT_GE(std::chrono::steady_clock::now() - started, 2s);
  EXPECT_FALSE(ProcessAlive(leftover.postmaster));
  EXPECT_EQ(server.Port(), leftover.port);
  EXPECT_EQ(QueryValue(server.ConnectionString(), "SELECT count(*) FROM kept"), "100");
}

TEST_F(PostgresServerTest, ChoosesAnotherPortWhenTheRecordedOneIsTaken) {
  PostgresServer server(TestOptions(data_dir_));
  server.Start();
  const int port = server.Port();
  server.Stop();

  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;  // the stopped server's connections leave the port in TIME_WAIT
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(fd, 1), 0);
  EXPECT_FALSE(IsPortFree(port));

  server.Start();
  EXPECT_NE(server.Port(), port);
  EXPECT_EQ(QueryValue(server.ConnectionString(), "SELECT 1"), "1");
  ::close(fd);
}

TEST_F(PostgresServerTest, UsesAnExplicitPortAndExtraSettings) {
  auto options = TestOptions(data_dir_);
  options.port = FindFreePort();
  options.database = "other db";
  options.settings.emplace_back("application_name", "it's me");
  PostgresServer server(options);
  server.Start();
  EXPECT_EQ(server.Port(), options.port);
  EXPECT_EQ(QueryValue(server.ConnectionString(), "SELECT current_database()"), "other db");
  EXPECT_EQ(QueryValue(server.ConnectionString(), "SHOW max_connections"), "20");

  server.CreateDatabase("extra");
  server.CreateDatabase("extra");  // exists: no error
  EXPECT_EQ(QueryValue(server.ConnectionString("extra"), "SELECT 1"), "1");
  server.DropDatabase("extra");
  EXPECT_EQ(QueryValue(server.ConnectionString("extra"), "SELECT 1"), std::nullopt);
}

// The niceness field of /proc/<pid>/stat (the 17th after "pid (comm)"); nullopt if gone.
std::optional<int> NicenessOf(pid_t pid) {
  std::ifstream in(fmt::format("/proc/{}/stat", pid));
  std::string line;
  if (!std::getline(in, line)) return std::nullopt;
  std::istringstream fields(line.substr(line.rfind(')') + 2));
  std::string field;
  for (int i = 0; i < 17 && fields >> field; ++i) {
  }
  return std::stoi(field);
}

TEST_F(PostgresServerTest, ARaisedNicenessReachesThePostmasterAndEveryBackend) {
  auto options = TestOptions(data_dir_);
  options.nice = 5;
  PostgresServer server(options);
  server.Start();
  const int own = ::getpriority(PRIO_PROCESS, 0);
  EXPECT_EQ(NicenessOf(server.Pid()), std::min(own + 5, 19));
  // The backend is read while its session is open (it exits when the session ends).
  std::unique_ptr<PGconn, decltype(&PQfinish)> session(
      PQconnectdb(server.ConnectionString().c_str()), PQfinish);
  ASSERT_EQ(PQstatus(session.get()), CONNECTION_OK) << PQerrorMessage(session.get());
  const int backend = PQbackendPID(session.get());
  ASSERT_GT(backend, 0);
  EXPECT_EQ(NicenessOf(backend), std::min(own + 5, 19));
}

TEST_F(PostgresServerTest, StartupFailureReportsTheServerLog) {
  auto options = TestOptions(data_dir_);
  options.settings.emplace_back("shared_buffers", "banana");
  PostgresServer server(options);
  try {
    server.Start();
    FAIL() << "Start() should have thrown";
  } catch (const std::runtime_error& e) {
    EXPECT_THAT(e.what(), HasSubstr("shared_buffers"));
    EXPECT_THAT(e.what(), HasSubstr("server.log"));
  }
  EXPECT_FALSE(server.IsRunning());
}

TEST_F(PostgresServerTest, RefusesANonEmptyDirectoryThatIsNotADataDirectory) {
  fs::create_directories(data_dir_);
  std::ofstream(data_dir_ / "something") << "x";
  PostgresServer server(TestOptions(data_dir_));
  EXPECT_THROW(server.Start(), std::runtime_error);
}

TEST(FindFreePort, ReturnsABindablePort) {
  const int port = FindFreePort();
  EXPECT_GT(port, 0);
  EXPECT_LT(port, 65536);
  EXPECT_TRUE(IsPortFree(port));
}

TEST(QuoteConninfoValue, QuotesOnlyWhenNeeded) {
  EXPECT_EQ(QuoteConninfoValue("shopcqrs"), "shopcqrs");
  EXPECT_EQ(QuoteConninfoValue("a b"), "'a b'");
  EXPECT_EQ(QuoteConninfoValue("it's"), "'it\\'s'");
  EXPECT_EQ(QuoteConninfoValue(""), "''");
}

// ChildProcess ----------------------------------------------------------------------------

TEST(ChildProcess, RunsAProgramAndReportsItsExitCodeAndOutput) {
  TempDir dir;
  ChildProcess child;
  child.Start(
      {.argv = {"sh", "-c", "echo out; echo err >&2; exit 3"}, .log_file = dir.Path() / "out.log"});
  auto status = child.Wait(10s);
  ASSERT_TRUE(status);
  EXPECT_EQ(status->exit_code, 3);
  EXPECT_EQ(status->signal, 0);
  EXPECT_FALSE(status->Success());
  EXPECT_FALSE(child.IsRunning());
  EXPECT_EQ(ReadFile(dir.Path() / "out.log"), "out\nerr\n");
  EXPECT_EQ(child.LastExit()->exit_code, 3);
}

TEST(ChildProcess, WaitTimesOutAndKillEndsTheChild) {
  ChildProcess child;
  child.Start({.argv = {"sleep", "30"}});
  EXPECT_TRUE(child.IsRunning());
  EXPECT_EQ(child.Wait(50ms), std::nullopt);
  EXPECT_TRUE(child.Kill(SIGTERM));
  auto status = child.Wait(10s);
  ASSERT_TRUE(status);
  EXPECT_EQ(status->signal, SIGTERM);
  EXPECT_FALSE(child.Kill(SIGTERM));  // no longer running
  EXPECT_THAT(status->Describe(), HasSubstr("signal 15"));
}

TEST(ChildProcess, StopEscalatesToSigkill) {
  ChildProcess child;
  TempDir dir;
  // The shell ignores SIGTERM and leaves a grandchild that must not survive either.
  child.Start({.argv = {"sh", "-c", "trap '' TERM; sleep 30 & echo $! > pid; wait"},
               .working_dir = dir.Path()});
  std::optional<pid_t> grandchild;
  for (int i = 0; i < 500 && !grandchild; ++i) {
    std::this_thread::sleep_for(10ms);
    std::ifstream in(dir.Path() / "pid");
    pid_t pid = 0;
    if (in >> pid && pid > 0) grandchild = pid;
  }
  ASSERT_TRUE(grandchild);
  auto status = child.Stop(SIGTERM, 200ms);
  ASSERT_TRUE(status);
  EXPECT_EQ(status->signal, SIGKILL);
  bool gone = false;  // killed; reaped by init (or a zombie until then)
  for (int i = 0; i < 500 && !gone; ++i) {
    gone = !devstack::ProcessAlive(*grandchild);
    if (!gone) std::this_thread::sleep_for(10ms);
  }
  EXPECT_TRUE(gone);
}

TEST(ChildProcess, PassesEnvironmentAndWorkingDirectory) {
  TempDir dir;
  ChildProcess child;
  child.Start({.argv = {"sh", "-c", "echo \"$SHOPCQRS_X $(pwd)\""},
               .log_file = dir.Path() / "out.log",
               .env = {{"SHOPCQRS_X", "hello"}},
               .working_dir = dir.Path()});
  ASSERT_TRUE(child.Wait(10s));
  EXPECT_EQ(ReadFile(dir.Path() / "out.log"), "hello " + dir.Path().string() + "\n");
}

TEST(ChildProcess, ReportsAMissingProgramAndAnUnknownUser) {
  ChildProcess child;
  EXPECT_THROW(child.Start({.argv = {"/nonexistent/program"}}), std::runtime_error);
  EXPECT_THROW(child.Start({.argv = {"true"}, .run_as_user = "no-such-user-shopcqrs"}),
               std::runtime_error);
  EXPECT_FALSE(child.IsRunning());
  EXPECT_EQ(child.Wait(1ms), std::nullopt);  // never started
}

TEST(ChildProcess, RunsAsAnotherUserWhenRoot) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  TempDir dir;
  ChildProcess child;
  child.Start({.argv = {"sh", "-c", "id -un; echo $HOME"},
               .run_as_user = "postgres",
               .log_file = dir.Path() / "out.log"});
  auto status = child.Wait(10s);
  ASSERT_TRUE(status);
  EXPECT_TRUE(status->Success());
  EXPECT_THAT(ReadFile(dir.Path() / "out.log"), HasSubstr("postgres\n"));
  struct stat st {};
  ASSERT_EQ(::stat((dir.Path() / "out.log").c_str(), &st), 0);
  EXPECT_NE(st.st_uid, 0u);  // handed to the user so the child could write it
}

TEST(ChildProcess, ParentDeathSignalFiresWhenTheSpawningThreadEnds) {
  // As the postgres user when root: the user switch must not clear the signal.
  ChildProcess child;
  std::thread([&] {
    child.Start({.argv = {"sleep", "30"},
                 .run_as_user = ::geteuid() == 0 ? "postgres" : "",
                 .parent_death_signal = SIGKILL});
  }).join();
  auto status = child.Wait(10s);
  ASSERT_TRUE(status);
  EXPECT_EQ(status->signal, SIGKILL);
}

TEST(ChildProcess, RunsAtTheNicenessItIsGiven) {
  const int own = ::getpriority(PRIO_PROCESS, 0);
  for (const int nice : {0, 3}) {
    ChildProcess child;
    child.Start({.argv = {"sh", "-c", "nice"}, .stdout_to = ChildOutput::Pipe(), .nice = nice});
    ASSERT_TRUE(child.Wait(10s));
    EXPECT_EQ(child.ReadOutput(ChildStream::kStdout),
              fmt::format("{}\n", std::min(own + nice, 19)));
  }
}

TEST(ChildProcess, SendsStdoutAndStderrToFilesOfTheirOwn) {
  TempDir dir;
  std::ofstream(dir.Path() / "out.log") << "before\n";
  std::ofstream(dir.Path() / "err.log") << "before\n";
  ChildProcess child;
  child.Start({.argv = {"sh", "-c", "echo out; echo err >&2"},
               .stdout_to = ChildOutput::AppendTo(dir.Path() / "out.log"),
               .stderr_to = ChildOutput::AppendTo(dir.Path() / "err.log")});
  ASSERT_TRUE(child.Wait(10s));
  EXPECT_EQ(ReadFile(dir.Path() / "out.log"), "before\nout\n");
  EXPECT_EQ(ReadFile(dir.Path() / "err.log"), "before\nerr\n");
}

TEST(ChildProcess, TruncatesAnOutputFileWhenAsked) {
  TempDir dir;
  const fs::path file = dir.Path() / "out.log";
  std::ofstream(file) << "the previous run's output\n";
  ChildProcess child;
  child.Start({.argv = {"sh", "-c", "echo out; echo err >&2"},
               .stdout_to = ChildOutput::TruncateTo(file),
               .stderr_to = ChildOutput::SameAsStdout()});
  ASSERT_TRUE(child.Wait(10s));
  EXPECT_EQ(ReadFile(file), "out\nerr\n");  // 2>&1: one file, in the order written
  EXPECT_THROW(child.Start({.argv = {"true"}, .stdout_to = ChildOutput::SameAsStdout()}),
               std::runtime_error);
  EXPECT_THROW(child.Start({.argv = {"true"}, .stdout_to = ChildOutput::AppendTo("")}),
               std::runtime_error);
}

TEST(ChildProcess, EachStreamCanLeaveTheLogFile) {
  TempDir dir;
  const fs::path log = dir.Path() / "log";
  ChildProcess child;
  // stdout discarded, stderr (by default) to the log file.
  child.Start({.argv = {"sh", "-c", "echo out; echo err >&2"},
               .log_file = log,
               .stdout_to = ChildOutput::Null()});
  ASSERT_TRUE(child.Wait(10s));
  EXPECT_EQ(ReadFile(log), "err\n");
  // stderr inherited: it goes to our stderr (here a file), stdout to the log file.
  const fs::path ours = dir.Path() / "ours";
  const int file = ::open(ours.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  ASSERT_GE(file, 0);
  const int saved = ::dup(STDERR_FILENO);
  ::dup2(file, STDERR_FILENO);
  ::close(file);
  child.Start({.argv = {"sh", "-c", "echo out2; echo err2 >&2"},
               .log_file = log,
               .stderr_to = ChildOutput::Inherit()});
  const auto status = child.Wait(10s);
  ::dup2(saved, STDERR_FILENO);
  ::close(saved);
  ASSERT_TRUE(status);
  EXPECT_EQ(ReadFile(log), "err\nout2\n");
  EXPECT_EQ(ReadFile(ours), "err2\n");
}

TEST(ChildProcess, PipesAnOutputToTheParent) {
  TempDir dir;
  ChildProcess child;
  EXPECT_EQ(child.ReadOutput(ChildStream::kStdout), "");  // never started
  child.Start({.argv = {"sh", "-c", "echo one; while [ ! -e go ]; do sleep 0.01; done; echo two"},
               .stdout_to = ChildOutput::Pipe(),
               .stderr_to = ChildOutput::AppendTo(dir.Path() / "err.log"),
               .working_dir = dir.Path()});
  std::string out;
  for (int i = 0; i < 1000 && out.empty(); ++i) {
    out += child.ReadOutput(ChildStream::kStdout);  // never blocks
    if (out.empty()) std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(out, "one\n");
  const auto before = std::chrono::steady_clock::now();
  EXPECT_EQ(child.ReadOutput(ChildStream::kStdout), "");  // the child waits for "go"
  EXPECT_LT(std::chrono::steady_clock::now() - before, 1s);
  EXPECT_EQ(child.ReadOutput(ChildStream::kStderr), "");  // not a pipe
  std::ofstream(dir.Path() / "go").close();
  ASSERT_TRUE(child.Wait(10s));
  // What the child wrote before it exited is still there to read.
  EXPECT_EQ(child.ReadOutput(ChildStream::kStdout), "two\n");
  EXPECT_EQ(child.ReadOutput(ChildStream::kStdout), "");
  // The next run has a pipe of its own: nothing of this one's is left in it.
  child.Start({.argv = {"sh", "-c", "echo unread"}, .stdout_to = ChildOutput::Pipe()});
  ASSERT_TRUE(child.Wait(10s));
  child.Start({.argv = {"sh", "-c", "echo three"}, .stdout_to = ChildOutput::Pipe()});
  ASSERT_TRUE(child.Wait(10s));
  EXPECT_EQ(child.ReadOutput(ChildStream::kStdout), "three\n");
}

TEST(ChildProcess, ClosingThePipeMakesTheChildsNextWriteFail) {
  TempDir dir;
  ChildProcess child;
  child.Start({.argv = {"sh", "-c", "while [ ! -e go ]; do sleep 0.01; done; echo late"},
               .stdout_to = ChildOutput::Pipe(),
               .working_dir = dir.Path()});
  child.CloseOutput(ChildStream::kStdout);
  child.CloseOutput(ChildStream::kStdout);  // no-op
  std::ofstream(dir.Path() / "go").close();
  const auto status = child.Wait(10s);
  ASSERT_TRUE(status);
  EXPECT_EQ(status->signal, SIGPIPE);
  EXPECT_EQ(child.ReadOutput(ChildStream::kStdout), "");
}

TEST(ChildProcess, StaysInOurProcessGroupWhenAsked) {
  ChildProcess own, shared;
  own.Start({.argv = {"sleep", "30"}});
  shared.Start({.argv = {"sleep", "30"}, .new_process_group = false});
  EXPECT_EQ(::getpgid(own.Pid()), own.Pid());
  EXPECT_EQ(::getpgid(shared.Pid()), ::getpgrp());
  // KillGroup is Kill for a child in our group (it must not signal this test).
  EXPECT_TRUE(shared.KillGroup(SIGKILL));
  EXPECT_EQ(shared.Wait(10s)->signal, SIGKILL);
  EXPECT_TRUE(own.KillGroup(SIGKILL));
  EXPECT_EQ(own.Wait(10s)->signal, SIGKILL);
}

TEST(ChildProcess, HandsOutputFilesToTheUserItRunsAs) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  TempDir dir;
  ChildProcess child;
  child.Start({.argv = {"sh", "-c", "id -un; id -un >&2"},
               .run_as_user = "postgres",
               .stdout_to = ChildOutput::TruncateTo(dir.Path() / "out.log"),
               .stderr_to = ChildOutput::AppendTo(dir.Path() / "err.log")});
  ASSERT_TRUE(child.Wait(10s));
  for (const char* name : {"out.log", "err.log"}) {
    EXPECT_EQ(ReadFile(dir.Path() / name), "postgres\n") << name;
    struct stat st {};
    ASSERT_EQ(::stat((dir.Path() / name).c_str(), &st), 0);
    EXPECT_NE(st.st_uid, 0u) << name;
  }
}

TEST(ChildProcess, RunToCompletionKillsOnTimeout) {
  EXPECT_EQ(RunToCompletion({.argv = {"true"}}, 10s).exit_code, 0);
  EXPECT_THROW(RunToCompletion({.argv = {"sleep", "30"}}, 100ms), std::runtime_error);
}

TEST(TailFile, ReturnsTheLastLines) {
  TempDir dir;
  std::ofstream(dir.Path() / "f") << "1\n2\n3\n4\n";
  EXPECT_EQ(TailFile(dir.Path() / "f", 2), "3\n4");
  EXPECT_EQ(TailFile(dir.Path() / "f", 10), "1\n2\n3\n4");
  EXPECT_EQ(TailFile(dir.Path() / "f", 10, 4), "3\n4");
  EXPECT_EQ(TailFile(dir.Path() / "missing", 10), "");
}

// The shared fixture -----------------------------------------------------------------------

TEST(TestPostgres, GivesEachCallAFreshDatabase) {
  const std::string a = test_support::FreshDatabase();
  const std::string b = test_support::FreshDatabase("custom hint");
  EXPECT_NE(a, b);
  ASSERT_TRUE(QueryValue(a, "CREATE TABLE only_in_a (v int)"));
  EXPECT_EQ(QueryValue(a, "SELECT count(*) FROM only_in_a"), "0");
  EXPECT_EQ(QueryValue(b, "SELECT count(*) FROM only_in_a"), std::nullopt);
  EXPECT_THAT(*QueryValue(b, "SELECT current_database()"), HasSubstr("custom_hint"));
  EXPECT_EQ(QueryValue(a, "SHOW wal_level"), "logical");
}

}  // namespace
}  // namespace shopcqrs::devstack
