#pragma once

// Temporary directories for tests, and local servers (devstack::RedisServer, NatsServer) of
// their own in one.

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>

namespace shopcqrs::test_support {

// A fresh directory under the system's temporary directory, named `prefix` and a unique tail,
// traversable by other users (the postgres user, when the tests run as root); removed with
// everything in it at the end of its scope.
class TempDir {
 public:
  explicit TempDir(std::string_view prefix = "shopcqrs-test-") {
    std::string tmpl = (std::filesystem::temp_directory_path() / prefix).string() + "XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed for " + tmpl);
    path_ = tmpl;
    ::chmod(path_.c_str(), 0755);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& Path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// A started server of its own (e.g. devstack::RedisServer) with its data in data/ of a
// temporary directory; stopped and removed at the end of its scope.
template <class Server>
struct TempServer {
  explicit TempServer(std::string name, std::string_view prefix = "shopcqrs-server-test-")
      : dir(prefix), server({.data_dir = dir.Path() / "data", .name = std::move(name)}) {
    server.Start();
  }
  ~TempServer() { server.Stop(); }

  TempDir dir;
  Server server;
};

}  // namespace shopcqrs::test_support
