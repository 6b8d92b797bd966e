#pragma once

// Whole read stores as comparable values, for tests that check one store equals another row for
// row and key for key (a store projected through a fault against one projected from the outbox).

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "infra/redis/redis_client.h"

namespace shopcqrs::test_support {

// The read PostgreSQL tables every projection of the read database writes.
inline constexpr const char* kReadTables[] = {"order_views", "customer_views",   "product_views",
                                              "daily_sales", "search_customers", "search_orders"};

// Every key under `prefix` (the prefix cut off) with its value, collections sorted; the
// projection's checkpoint only with its applied-events count (its xid and position are those of
// its write database).
inline std::map<std::string, std::string> RedisDump(const infra::redis::RedisEndpoint& endpoint,
                                                    const std::string& prefix) {
  infra::redis::RedisClient client(endpoint);
  std::vector<std::string> keys;
  std::string cursor = "0";
  do {
    auto reply = client.Command({"SCAN", cursor, "MATCH", prefix + "*", "COUNT", "1000"});
    cursor = reply.elements.at(0).str;
    for (const auto& key : reply.elements.at(1).elements) keys.push_back(key.str);
  } while (cursor != "0");
  std::map<std::string, std::string> dump;
  for (const auto& key : keys) {
    const std::string name = key.substr(prefix.size());
    const std::string type = client.Command({"TYPE", key}).str;
    std::vector<std::string> items;
    if (name.starts_with("checkpoint:")) {
      items.push_back(client.Command({"HGET", key, "events"}).str);
    } else if (type == "string") {
      items.push_back(client.Command({"GET", key}).str);
    } else if (type == "hash" || type == "set") {
      const auto reply = client.Command({type == "hash" ? "HGETALL" : "SMEMBERS", key});
      for (std::size_t i = 0; i < reply.elements.size(); ++i) {
        const bool pair = type == "hash";
        items.push_back(pair ? reply.elements[i].str + "=" + reply.elements[i + 1].str
                             : reply.elements[i].str);
        if (pair) ++i;
      }
      std::sort(items.begin(), items.end());
    } else if (type == "zset") {
      const auto reply = client.Command({"ZRANGE", key, "0", "-1", "WITHSCORES"});
      for (const auto& item : reply.elements) items.push_back(item.str);
    } else {
      items.push_back("(type " + type + ")");
    }
    dump[name] = type + ": " + fmt::format("{}", fmt::join(items, " | "));
  }
  return dump;
}

}  // namespace shopcqrs::test_support
