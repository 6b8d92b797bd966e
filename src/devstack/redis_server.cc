#include "devstack/redis_server.h"

namespace shopcqrs::devstack {

using namespace std::chrono_literals;

namespace {

bool IsLoopback(std::string_view bind) {
  return bind == "127.0.0.1" || bind == "::1" || bind == "localhost";
}

}  // namespace

RedisServer::RedisServer(Options options)
    : SupervisedServer("RedisServer", options, "redis.log", {.program = "redis-server"}),
      options_(std::move(options)) {}

RedisServer::~RedisServer() { Stop(); }

infra::redis::RedisEndpoint RedisServer::Endpoint() const {
  infra::redis::RedisEndpoint endpoint;
  endpoint.host =
      IsLoopback(options_.bind) || options_.bind == "0.0.0.0" ? "127.0.0.1" : options_.bind;
  endpoint.port = Port();
  return endpoint;
}

ChildProcessOptions RedisServer::Command(int port) const {
  ChildProcessOptions child;
  child.argv = {options_.binary.string(),
                "--port",
                std::to_string(port),
                "--bind",
                options_.bind,
                "--protected-mode",
                IsLoopback(options_.bind) ? "no" : "yes",
                "--dir",
                data_dir_.string(),
                "--appendonly",
                "yes",
                "--appendfsync",
                options_.appendfsync,
                "--save",
                "",
                "--daemonize",
                "no",
                "--logfile",
                ""};
  for (const auto& [name, value] : options_.settings) {
    child.argv.push_back("--" + name);
    child.argv.push_back(value);
  }
  return child;
}

std::string RedisServer::Probe(int port) const {
  try {
    infra::redis::RedisClient client(infra::redis::RedisEndpoint{
        .host = "127.0.0.1", .port = port, .connect_timeout = 500ms, .command_timeout = 2000ms});
    client.Ping();  // a server still loading its AOF answers LOADING (an error reply)
    return {};
  } catch (const infra::redis::RedisError& error) {
    return error.what();
  }
}

}  // namespace shopcqrs::devstack
