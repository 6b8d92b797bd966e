#pragma once

#include <signal.h>

#include <filesystem>
#include <optional>
#include <string>

namespace shopcqrs::apps {

// `shopcqrs up`: zero configuration. Starts local write and read PostgreSQL servers,
// redis-server and nats-server (JetStream) under `data_dir`, each supervised (restarted on its
// port when it dies; what a killed predecessor left running is stopped first), then serves every
// role in this process (Serve) until SIGINT/SIGTERM, and stops the servers.
int Up(const std::filesystem::path& data_dir, const std::optional<std::string>& listen,
       const std::optional<std::string>& log_level, const sigset_t& signals);

}  // namespace shopcqrs::apps
