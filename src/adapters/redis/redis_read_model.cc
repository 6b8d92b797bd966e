#include "adapters/redis/redis_read_model.h"

#include <algorithm>
#include <stdexcept>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/json.hpp>

#include "domain/time.h"

namespace shopcqrs::adapters::redis {

using namespace infra::redis;

namespace json = boost::json;

namespace {

// ZRANGE of the ranking, then each product's hash, in one atomic step.
const RedisScript& TopScript() {
  static const RedisScript script{R"lua(
local ids = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[2]) - 1)
local out = {}
for i, id in ipairs(ids) do
  local p = redis.call('HMGET', ARGV[1] .. 'product:' .. id, 'sku', 'name', 'units_sold',
                       'revenue_cents')
  out[i] = { id, p[1] or '', p[2] or '', p[3] or '0', p[4] or '0' }
end
return out
)lua"};
  return script;
}

std::int64_t SteadyMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::optional<std::string> OptString(const json::object& o, std::string_view key) {
  const auto& v = o.at(key);
  if (v.is_null()) return std::nullopt;
  return std::string(v.as_string());
}

std::optional<domain::Timestamp> OptTime(const json::object& o, std::string_view key) {
  const auto& v = o.at(key);
  if (v.is_null()) return std::nullopt;
  auto t = domain::ParseTimestamp(v.as_string());
  if (!t) throw std::runtime_error(fmt::format("bad timestamp in {}", key));
  return t;
}

std::int64_t ToInt(const RedisReply& reply) {
  if (reply.type == RedisReply::Type::kInteger) return reply.integer;
  return std::stoll(reply.str);
}

}  // namespace

app::OrderView ParseOrderView(std::string_view json_text) {
  const auto doc = json::parse(json_text);
  const auto& o = doc.as_object();
  app::OrderView view;
  view.id = o.at("id").as_string();
  view.customer_id = o.at("customer_id").as_string();
  view.customer_name = OptString(o, "customer_name");
  view.customer_email = OptString(o, "customer_email");
  view.status = o.at("status").as_string();
  view.item_count = o.at("item_count").to_number<std::int64_t>();
  view.total_cents = o.at("total_cents").to_number<std::int64_t>();
  auto placed = OptTime(o, "placed_at");
  if (!placed) throw std::runtime_error("order document without placed_at");
  view.placed_at = *placed;
  view.paid_at = OptTime(o, "paid_at");
  view.shipped_at = OptTime(o, "shipped_at");
  view.delivered_at = OptTime(o, "delivered_at");
  view.cancelled_at = OptTime(o, "cancelled_at");
  view.payment_reference = OptString(o, "payment_reference");
  view.tracking_number = OptString(o, "tracking_number");
  view.cancel_reason = OptString(o, "cancel_reason");
  view.version = o.at("version").to_number<std::int64_t>();
  for (const auto& item : o.at("lines").as_array()) {
    const auto& l = item.as_object();
    view.lines.push_back(app::OrderLineView{
        std::string(l.at("product_id").as_string()), std::string(l.at("sku").as_string()),
        std::string(l.at("product_name").as_string()), l.at("quantity").to_number<std::int64_t>(),
        l.at("unit_price_cents").to_number<std::int64_t>(),
        l.at("line_total_cents").to_number<std::int64_t>()});
  }
  return view;
}

// ---- RedisReadModel ----

RedisReadModel::RedisReadModel(Options options)
    : options_(std::move(options)), keys_{options_.key_prefix} {
  const int n = std::max(1, options_.connections);
  for (int i = 0; i < n; ++i) {
    auto slot = std::make_unique<Slot>();
    slot->client = std::make_unique<RedisClient>(options_.endpoint);
    slots_.push_back(std::move(slot));
  }
}

RedisReadModel::~RedisReadModel() = default;

template <class F>
auto RedisReadModel::WithClient(F&& f) {
  if (SteadyMs() < down_until_ms_.load()) {
    throw RedisConnectionError(fmt::format("redis {}:{} is down (recently unreachable)",
                                           options_.endpoint.host, options_.endpoint.port));
  }
  // A free connection if there is one (callers never queue behind each other while another
  // connection idles), else the round robin's.
  const std::size_t first = next_slot_.fetch_add(1);
  Slot* chosen = nullptr;
  std::unique_lock<std::mutex> lock;
  for (std::size_t i = 0; i < slots_.size() && !chosen; ++i) {
    Slot& candidate = *slots_[(first + i) % slots_.size()];
    std::unique_lock<std::mutex> attempt(candidate.mutex, std::try_to_lock);
    if (attempt.owns_lock()) {
      chosen = &candidate;
      lock = std::move(attempt);
    }
  }
  if (!chosen) {
    chosen = slots_[first % slots_.size()].get();
    lock = std::unique_lock<std::mutex>(chosen->mutex);
  }
  Slot& slot = *chosen;
  try {
    if (slot.client->IsConnected()) {
      // The connection may be stale (Redis restarted since its last use): reads are safe to
      // repeat, so a connection fault here is retried once on a fresh connection.
      try {
        return f(*slot.client);
      } catch (const RedisConnectionError&) {
      }
    }
    return f(*slot.client);
  } catch (const RedisConnectionError&) {
    down_until_ms_ = SteadyMs() + options_.down_interval.count();
    throw;
  }
}

std::optional<app::OrderView> RedisReadModel::GetOrder(const domain::OrderId& id) {
  auto reply = WithClient([&](RedisClient& c) {
    return c.Command({"GET", keys_.Order(id.ToString())});
  });
  if (reply.IsNil()) return std::nullopt;
  return ParseOrderView(reply.str);
}

std::vector<app::TopProduct> RedisReadModel::TopProducts(int limit) {
  auto reply = WithClient([&](RedisClient& c) {
    return c.Eval(TopScript(), {keys_.TopProducts()}, {keys_.prefix, std::to_string(limit)});
  });
  std::vector<app::TopProduct> out;
  for (const auto& row : reply.elements) {
    if (row.elements.size() != 5) throw RedisError("unexpected top products reply");
    out.push_back(app::TopProduct{row.elements[0].str, row.elements[1].str, row.elements[2].str,
                                  ToInt(row.elements[3]), ToInt(row.elements[4])});
  }
  return out;
}

bool RedisReadModel::Ping() {
  try {
    WithClient([](RedisClient& c) {
      c.Ping();
      return 0;
    });
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

// ---- RedisQueries ----

RedisQueries::RedisQueries(RedisReadModel& redis, infra::pg::Pool& read_pool)
    : PgReadModel(read_pool), redis_(redis) {}

std::optional<app::OrderView> RedisQueries::GetOrder(const domain::OrderId& id) {
  try {
    if (auto view = redis_.GetOrder(id)) {
      ++hits_;
      return view;
    }
    ++misses_;
  } catch (const std::exception& error) {
    ++errors_;
    spdlog::debug("redis GetOrder failed, answering from the read database: {}", error.what());
  }
  return PgReadModel::GetOrder(id);
}

domain::Result<std::vector<app::TopProduct>> RedisQueries::TopProducts(int limit) {
  if (limit < 1 || limit > 100) return PgReadModel::TopProducts(limit);  // its validation error
  try {
    auto top = redis_.TopProducts(limit);
    ++hits_;
    return top;
  } catch (const std::exception& error) {
    ++errors_;
    spdlog::debug("redis TopProducts failed, answering from the read database: {}", error.what());
  }
  return PgReadModel::TopProducts(limit);
}

RedisQueries::Stats RedisQueries::GetStats() const {
  return Stats{hits_.load(), misses_.load(), errors_.load()};
}

}  // namespace shopcqrs::adapters::redis
