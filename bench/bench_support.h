#pragma once

// What the benchmarks that run their own servers (shopcqrs-bench-lag, shopcqrs-bench-catchup)
// share.

#include <sys/stat.h>
#include <unistd.h>

#include <exception>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/json.hpp>

#include "devstack/postgres_server.h"
#include "infra/pg/migrator.h"

namespace shopcqrs::bench {

// A fresh directory under the temporary directory, named `prefix` and a unique tail.
inline std::string MakeTempDir(std::string_view prefix) {
  std::string dir = (std::filesystem::temp_directory_path() / prefix).string() + "XXXXXX";
  if (!::mkdtemp(dir.data())) throw std::runtime_error("mkdtemp failed");
  return dir;
}

// The write and read PostgreSQL servers of a benchmark, with their data in `dir`/write and
// `dir`/read (`dir` is made traversable: the servers may run as the postgres user); started,
// and the write database migrated.
struct BenchServers {
  // `read_nice` > 0 runs the read server at a lower CPU priority (as `shopcqrs up` does).
  BenchServers(const std::filesystem::path& dir, bool fsync,
               const std::vector<std::pair<std::string, std::string>>& settings = {},
               int read_nice = 0)
      : write_server(Options(dir, "write", fsync, settings, 0)),
        read_server(Options(dir, "read", fsync, settings, read_nice)) {
    write_server.Start();
    read_server.Start();
    write = write_server.ConnectionString();
    infra::pg::ApplyMigrations(write, "pg_write");
  }
  void Stop() {
    read_server.Stop();
    write_server.Stop();
  }

  devstack::PostgresServer write_server;
  devstack::PostgresServer read_server;
  std::string write;  // the write database's conninfo

 private:
  static devstack::PostgresServer::Options Options(
      const std::filesystem::path& dir, const char* name, bool fsync,
      const std::vector<std::pair<std::string, std::string>>& settings, int nice) {
    ::chmod(dir.c_str(), 0755);
    devstack::PostgresServer::Options o;
    o.data_dir = dir / name;
    o.name = name;
    o.fsync = fsync;
    o.stop_with_parent = true;
    o.settings = settings;
    o.nice = nice;
    return o;
  }
};

// Writes `value` to `file` (creating its directory) and says so; nothing if `file` is empty.
inline void WriteJson(const std::string& file, const boost::json::value& value) {
  if (file.empty()) return;
  const std::filesystem::path path(file);
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path());
  std::ofstream(path) << boost::json::serialize(value) << "\n";
  std::cout << "wrote " << file << "\n";
}

// main() of a benchmark called `name`: runs `run`; an exception is reported as "name: what"
// (exit status 1).
inline int Main(const char* name, int argc, char** argv, int (*run)(int, char**)) {
  try {
    return run(argc, argv);
  } catch (const std::exception& error) {
    std::cerr << name << ": " << error.what() << "\n";
    return 1;
  }
}

}  // namespace shopcqrs::bench
