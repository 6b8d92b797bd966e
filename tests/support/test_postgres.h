#pragma once

// A process-wide PostgreSQL server for integration tests, and a fresh database per test.
//
//   #include "support/test_postgres.h"
//   TEST(MyStore, Works) {
//     std::string conninfo = shopcqrs::test_support::FreshDatabase();  // empty database
//     ...
//   }
//
// The server starts on first use (once per test binary) from the system's binaries in a
// temporary directory, with fsync off and wal_level=logical, and is stopped and removed at
// exit. Directories left by killed test binaries are removed by the next run.
// Set SHOPCQRS_TEST_PG to an admin conninfo (key=value form, a superuser) to use an
// existing server instead.

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <libpq-fe.h>

#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include "devstack/postgres_server.h"

namespace shopcqrs::test_support {

class TestPostgres {
 public:
  // The shared server, started on first call. Throws if it cannot start.
  static TestPostgres& Instance() {
    static TestPostgres instance;
    return instance;
  }

  // conninfo of the server's "postgres" database (superuser "postgres").
  const std::string& AdminConnectionString() const { return admin_conninfo_; }

  // The local server, or nullptr when SHOPCQRS_TEST_PG points at an external one.
  devstack::PostgresServer* Server() { return server_.get(); }

  // Creates an empty database with a unique name (derived from `hint`, or the current
  // test's name) and returns its conninfo.
  std::string CreateDatabase(std::string_view hint = {}) {
    const std::string name = UniqueName(hint);
    Exec(admin_conninfo_, "CREATE DATABASE \"" + name + "\"");
    return WithDatabase(name);
  }

  // Drops a database made by CreateDatabase (optional: everything goes at exit).
  void DropDatabase(std::string_view name) {
    Exec(admin_conninfo_, fmt::format("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", name));
  }

  // conninfo of database `name` on this server.
  std::string WithDatabase(std::string_view name) const {
    return base_conninfo_ + " dbname=" + devstack::QuoteConninfoValue(name);
  }

  TestPostgres(const TestPostgres&) = delete;
  TestPostgres& operator=(const TestPostgres&) = delete;

 private:
  TestPostgres() {
    spdlog::default_logger();  // constructed first, so it outlives this object
    if (const char* external = std::getenv("SHOPCQRS_TEST_PG"); external && *external) {
      base_conninfo_ = StripDbname(external);
      admin_conninfo_ = WithDatabase("postgres");
      return;
    }
    RemoveStaleDirectories();
    std::string tmpl = (std::filesystem::temp_directory_path() /
                        fmt::format("{}{}-XXXXXX", kDirPrefix, ::getpid()))
                           .string();
    if (::mkdtemp(tmpl.data()) == nullptr) {
      throw std::runtime_error("TestPostgres: mkdtemp failed for " + tmpl);
    }
    root_ = tmpl;
    ::chmod(root_.c_str(), 0755);  // the postgres user (when we are root) must get through

    devstack::PostgresServer::Options options;
    options.data_dir = root_ / "data";
    CopyTemplate(options.data_dir);  // saves initdb's second or two in every test binary
    options.name = "test";
    options.fsync = false;
    options.database = "postgres";
    options.settings = {{"shared_buffers", "32MB"},      {"max_connections", "300"},
                        {"wal_level", "logical"},        {"max_replication_slots", "32"},
                        {"max_wal_senders", "32"},       {"log_min_messages", "warning"},
                        {"checkpoint_timeout", "30min"}, {"max_wal_size", "1GB"}};
    // The kernel stops the server if this binary dies, but the signal is tied to the thread
    // that started it: only ask for it from the main thread.
    options.stop_with_parent = ::syscall(SYS_gettid) == ::getpid();
    server_ = std::make_unique<devstack::PostgresServer>(std::move(options));
    try {
      server_->Start();
    } catch (...) {
      server_.reset();
      std::error_code ec;
      std::filesystem::remove_all(root_, ec);
      throw;
    }
    base_conninfo_ = fmt::format("host=127.0.0.1 port={} user=postgres", server_->Port());
    admin_conninfo_ = WithDatabase("postgres");
  }

  ~TestPostgres() {
    try {
      if (server_) server_->Stop();
    } catch (...) {
    }
    server_.reset();
    if (!root_.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(root_, ec);
    }
  }

  static constexpr const char* kDirPrefix = "shopcqrs-test-pg-";

  // Removes temp dirs of test binaries that died without cleaning up (pid no longer alive).
  static void RemoveStaleDirectories() {
    std::error_code ec;
    for (const auto& entry :
         std::filesystem::directory_iterator(std::filesystem::temp_directory_path(), ec)) {
      const std::string name = entry.path().filename().string();
      if (!name.starts_with(kDirPrefix)) continue;
      const std::string rest = name.substr(std::string_view(kDirPrefix).size());
      const pid_t pid = static_cast<pid_t>(std::atol(rest.c_str()));
      if (pid <= 0 || pid == ::getpid()) continue;
      if (::kill(pid, 0) == 0 || errno != ESRCH) continue;
      StopOrphanServer(entry.path() / "data");
      std::error_code remove_ec;
      std::filesystem::remove_all(entry.path(), remove_ec);
    }
  }

  // initdb runs once per machine (and PostgreSQL build): later test binaries copy the
  // initialised template. Best effort: on any failure the server runs initdb itself.
  static void CopyTemplate(const std::filesystem::path& data_dir) {
    namespace fs = std::filesystem;
    std::error_code ec;
    try {
      const fs::path bin_dir = devstack::FindPostgresBinDir();
      struct stat st {};
      ::stat((bin_dir / "initdb").c_str(), &st);
      const std::size_t key = std::hash<std::string>{}(
          fmt::format("{}|{}|{}", bin_dir.string(), st.st_mtime, st.st_size));
      const fs::path tmp = fs::temp_directory_path();
      const std::string name = fmt::format("shopcqrs-pg-template-{}-{:x}", ::geteuid(), key);
      const fs::path tmpl = tmp / name;
      {
        const int lock_fd =
            ::open((tmp / (name + ".lock")).c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0600);
        if (lock_fd < 0) return;
        ::flock(lock_fd, LOCK_EX);  // released by close, also if we die
        std::unique_ptr<int, void (*)(int*)> unlock(new int(lock_fd), [](int* fd) {
          ::close(*fd);
          delete fd;
        });
        if (!fs::exists(tmpl / "PG_VERSION")) {
          for (const auto& entry : fs::directory_iterator(tmp, ec)) {
            if (entry.path().filename().string().starts_with(name + ".building-")) {
              fs::remove_all(entry.path(), ec);
            }
          }
          fs::path building = tmp / fmt::format("{}.building-{}", name, ::getpid());
          devstack::PostgresServer::Options options;
          options.data_dir = building;
          options.name = "test-template";
          options.fsync = false;
          devstack::PostgresServer(options).Initialize();
          fs::remove_all(tmpl, ec);
          fs::rename(building, tmpl);
        }
      }
      fs::copy(tmpl, data_dir, fs::copy_options::recursive, ec);
      if (ec) throw std::runtime_error(ec.message());
    } catch (const std::exception& e) {
      spdlog::warn("TestPostgres: not using a template data directory: {}", e.what());
      fs::remove_all(data_dir, ec);
    }
  }

  // A server whose test binary died (and that outlived it) is shut down before its
  // directory goes.
  static void StopOrphanServer(const std::filesystem::path& data_dir) {
    std::ifstream pid_file(data_dir / "postmaster.pid");
    pid_t pid = 0;
    if (!(pid_file >> pid) || pid <= 0) return;
    std::error_code ec;
    const auto cwd = std::filesystem::read_symlink(fmt::format("/proc/{}/cwd", pid), ec);
    if (ec || !std::filesystem::equivalent(cwd, data_dir, ec)) return;
    ::kill(pid, SIGQUIT);
    for (int i = 0; i < 200 && std::filesystem::exists(fmt::format("/proc/{}/cwd", pid), ec); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }

  static std::string StripDbname(const std::string& conninfo) {
    char* error = nullptr;
    PQconninfoOption* options = PQconninfoParse(conninfo.c_str(), &error);
    if (options == nullptr) {
      std::string message = error ? error : "out of memory";
      PQfreemem(error);
      throw std::runtime_error("SHOPCQRS_TEST_PG is not a valid conninfo: " + message);
    }
    std::string out;
    for (PQconninfoOption* o = options; o->keyword; ++o) {
      if (o->val == nullptr || std::string_view(o->keyword) == "dbname") continue;
      if (!out.empty()) out += ' ';
      out += fmt::format("{}={}", o->keyword, devstack::QuoteConninfoValue(o->val));
    }
    PQconninfoFree(options);
    return out;
  }

  std::string UniqueName(std::string_view hint) {
    std::string base;
    if (hint.empty()) {
      if (const auto* info = ::testing::UnitTest::GetInstance()->current_test_info()) {
        base = fmt::format("{}_{}", info->test_suite_name(), info->name());
      }
    } else {
      base = hint;
    }
    std::string clean;
    for (char c : base) {
      if (clean.size() >= 36) break;
      clean += std::isalnum(static_cast<unsigned char>(c))
                   ? static_cast<char>(std::tolower(static_cast<unsigned char>(c)))
                   : '_';
    }
    if (clean.empty()) clean = "db";
    return fmt::format("t_{}_{}_{}", clean, ::getpid(), counter_.fetch_add(1));
  }

  static void Exec(const std::string& conninfo, const std::string& sql) {
    std::unique_ptr<PGconn, decltype(&PQfinish)> conn(PQconnectdb(conninfo.c_str()), &PQfinish);
    if (PQstatus(conn.get()) != CONNECTION_OK) {
      throw std::runtime_error(fmt::format("TestPostgres: cannot connect ({}): {}", conninfo,
                                           PQerrorMessage(conn.get())));
    }
    std::unique_ptr<PGresult, decltype(&PQclear)> res(PQexec(conn.get(), sql.c_str()), &PQclear);
    if (PQresultStatus(res.get()) != PGRES_COMMAND_OK) {
      throw std::runtime_error(
          fmt::format("TestPostgres: {} failed: {}", sql, PQresultErrorMessage(res.get())));
    }
  }

  std::filesystem::path root_;
  std::unique_ptr<devstack::PostgresServer> server_;
  std::string base_conninfo_;   // without dbname
  std::string admin_conninfo_;  // dbname=postgres
  std::atomic<int> counter_ = 0;
};

// A fresh, empty database on the shared test server; returns its conninfo.
inline std::string FreshDatabase(std::string_view hint = {}) {
  return TestPostgres::Instance().CreateDatabase(hint);
}

}  // namespace shopcqrs::test_support
