#pragma once

// A redis-server or nats-server of a test's own (see TempServer).

#include <atomic>
#include <string>
#include <utility>

#include <fmt/format.h>

#include "adapters/nats/event_messages.h"
#include "devstack/nats_server.h"
#include "devstack/redis_server.h"
#include "infra/nats/jetstream.h"
#include "support/temp_dir.h"

namespace shopcqrs::test_support {

struct TempRedis : TempServer<devstack::RedisServer> {
  TempRedis() : TempServer("test-redis", "shopcqrs-redis-test-") {}
  // The key prefix of the test's stores, unique in the process.
  const std::string prefix = fmt::format("t{}:", counter++);

 private:
  static inline std::atomic<int> counter = 0;
};

struct TempNats : TempServer<devstack::NatsServer> {
  TempNats() : TempServer("test-nats", "shopcqrs-nats-test-") {}
  // Options of a JetStream client of this server called `name`.
  infra::nats::JetStreamConnection::Options Options(std::string name = "test") const {
    return {.url = server.Url(), .name = std::move(name)};
  }
};

}  // namespace shopcqrs::test_support
