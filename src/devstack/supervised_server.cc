#include "devstack/supervised_server.h"

#include <stdexcept>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace shopcqrs::devstack {

namespace fs = std::filesystem;

fs::path SupervisedServer::AbsoluteDataDir(std::string_view wrapper, const fs::path& data_dir) {
  if (data_dir.empty()) throw std::runtime_error(fmt::format("{}: data_dir is empty", wrapper));
  fs::path absolute = fs::absolute(data_dir).lexically_normal();
  if (!absolute.has_filename()) absolute = absolute.parent_path();  // "dir/"
  return absolute;
}

void SupervisedServer::Start() {
  supervisor_.Start();
  spdlog::info("[{}] {} listening on {} (data {})", name_, program_, Address(), data_dir_.string());
}

std::string SupervisedServer::Address() const { return fmt::format("127.0.0.1:{}", Port()); }

}  // namespace shopcqrs::devstack
