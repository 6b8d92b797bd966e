#include "adapters/http/query_routes.h"

#include <charconv>
#include <memory>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/json.hpp>

#include "adapters/http/auth_policy.h"
#include "adapters/http/problem.h"
#include "adapters/http/route_table.h"
#include "application/ports.h"
#include "domain/events.h"
#include "domain/time.h"

namespace shopcqrs::adapters::http {

using namespace infra::http;

namespace {

namespace json = boost::json;
using Outcome = std::expected<Response, Problem>;

// ---- parameters ----

std::expected<std::int64_t, Problem> IntegerParam(const Request& request, std::string_view name,
                                                  std::int64_t fallback, std::int64_t min,
                                                  std::int64_t max) {
  auto text = request.Query(name);
  if (!text) return fallback;
  std::int64_t value = 0;
  auto [ptr, ec] = std::from_chars(text->data(), text->data() + text->size(), value);
  if (text->empty() || ec != std::errc() || ptr != text->data() + text->size() || value < min ||
      value > max) {
    return std::unexpected(
        ValidationFailed(fmt::format("{} must be an integer between {} and {}", name, min, max)));
  }
  return value;
}

std::expected<int, Problem> Limit(const Request& request) {
  auto limit = IntegerParam(request, "limit", 20, 1, 100);
  if (!limit) return std::unexpected(limit.error());
  return static_cast<int>(*limit);
}

std::optional<std::string> OptionalParam(const Request& request, std::string_view name) {
  auto value = request.Query(name);
  if (!value) return std::nullopt;
  return std::string(*value);
}

std::expected<std::chrono::sys_days, Problem> DateParam(const Request& request,
                                                        std::string_view name) {
  auto text = request.Query(name);
  if (!text) return std::unexpected(ValidationFailed(fmt::format("{} is required", name)));
  // YYYY-MM-DD exactly; ParseTimestamp checks the calendar.
  if (text->size() != 10 || (*text)[4] != '-' || (*text)[7] != '-') {
    return std::unexpected(ValidationFailed(fmt::format("{} must be a date YYYY-MM-DD", name)));
  }
  auto parsed = domain::ParseTimestamp(std::string(*text) + "T00:00:00Z");
  if (!parsed) {
    return std::unexpected(ValidationFailed(fmt::format("{} must be a date YYYY-MM-DD", name)));
  }
  return std::chrono::floor<std::chrono::days>(*parsed);
}

// ---- consistency ----

std::optional<std::string_view> TokenOf(const Request& request) {
  if (auto header = request.Header("X-Consistency-Token")) return header;
  return request.Query("consistency_token");
}

// Waits until the read store has applied the request's token, if it carries one.
// `other` (may be null) is a second store the answer depends on (Redis, which answers with
// the read PostgreSQL as fallback; the search projection, which selects the orders the read
// PostgreSQL describes): then both must have applied the token.
// The answer reads rows that parked events of a projection (cqrs/dead_letters.h) would change:
// it cannot honour the token (API.md "Operations").
Problem Parked() {
  auto problem = ServiceUnavailable(
      "read_model_behind",
      "the read model has parked events (dead letters) that this answer depends on", 1);
  problem.extras["parked"] = true;
  return problem;
}

// The rows an answer reads, as the keys of cqrs::ParkedIndex (adapters/events/footprint.h).
using KeysFn = std::vector<std::string> (*)(const Request&);

std::expected<void, Problem> AwaitConsistency(const Request& request,
                                              const cqrs::ConsistencyTokens& tokens,
                                              const cqrs::ProgressTracker& progress,
                                              const cqrs::ProgressTracker* other,
                                              const QueryRouteOptions& options,
                                              const std::vector<std::string>& keys) {
  auto token = TokenOf(request);
  if (!token) return {};
  auto bound = tokens.Decode(*token);
  if (!bound) {
    return std::unexpected(
        ValidationFailed("consistency_token is not a token this service issued"));
  }
  auto wait = options.default_wait;
  if (auto header = request.Header("X-Consistency-Wait-Ms")) {
    std::int64_t ms = 0;
    auto [ptr, ec] = std::from_chars(header->data(), header->data() + header->size(), ms);
    if (header->empty() || ec != std::errc() || ptr != header->data() + header->size() || ms < 0 ||
        ms > options.max_wait.count()) {
      return std::unexpected(ValidationFailed(fmt::format(
          "X-Consistency-Wait-Ms must be an integer between 0 and {}", options.max_wait.count())));
    }
    wait = std::chrono::milliseconds(ms);
  }
  const auto deadline = std::chrono::steady_clock::now() + wait;
  auto left = [&] {
    return std::max(std::chrono::milliseconds(0),
                    std::chrono::duration_cast<std::chrono::milliseconds>(
                        deadline - std::chrono::steady_clock::now()));
  };
  using Wait = cqrs::ProgressTracker::WaitResult;
  auto result = progress.WaitUnparked(*bound, keys, wait);
  if (result == Wait::kReady && other) result = other->WaitUnparked(*bound, keys, left());
  if (result == Wait::kParked) return std::unexpected(Parked());
  if (result == Wait::kBehind) {
    return std::unexpected(ServiceUnavailable(
        "read_model_behind", "the read model has not applied the consistency token yet", 1));
  }
  return {};
}

// After the answer was read: whether a token it honours is blocked by parked events of rows it
// names only in what it read (an order's customer, whose details it shows).
bool ParkedAfterRead(const Request& request, const cqrs::ConsistencyTokens& tokens,
                     const cqrs::ProgressTracker& progress, std::vector<std::string> keys) {
  auto token = TokenOf(request);
  if (!token) return false;
  auto bound = tokens.Decode(*token);
  auto parked = progress.Parked();
  return bound && parked && parked->Blocks(*bound, keys);
}

// ---- the rows each query reads (KeysFn) ----

std::string Key(std::string_view kind, std::string_view id) {
  return std::string(kind) + ":" + std::string(id);
}
std::vector<std::string> OrderKeys(const Request& r) { return {Key("order", r.PathParam("id"))}; }
std::vector<std::string> CustomerKeys(const Request& r) {
  return {Key("customer", r.PathParam("id")), Key("customer-of", r.PathParam("id"))};
}
std::vector<std::string> ProductKeys(const Request& r) {
  return {Key("product", r.PathParam("id"))};
}
std::vector<std::string> AnyProduct(const Request&) { return {"product:*"}; }
std::vector<std::string> AnyOrder(const Request&) { return {"order:*", "customer:*"}; }
std::vector<std::string> OrderListKeys(const Request& r) {
  // A customer's list (a customer lists its own only), else every order.
  std::optional<std::string> customer;
  if (const app::Principal who = PrincipalOf(r); who.IsCustomer()) customer = who.subject;
  if (auto id = r.Query("customer_id"); !customer && id && !id->empty()) customer = *id;
  if (!customer) return AnyOrder(r);
  return {Key("customer", *customer), Key("customer-of", *customer)};
}

// ---- rendering ----

json::value Opt(const std::optional<std::string>& value) {
  return value ? json::value(*value) : json::value(nullptr);
}
json::value Time(const std::optional<domain::Timestamp>& value) {
  return value ? json::value(domain::FormatTimestamp(*value)) : json::value(nullptr);
}

json::object SummaryJson(const app::OrderSummary& o) {
  return json::object{{"id", o.id},
                      {"customer_id", o.customer_id},
                      {"customer_name", Opt(o.customer_name)},
                      {"customer_email", Opt(o.customer_email)},
                      {"status", o.status},
                      {"item_count", o.item_count},
                      {"total_cents", o.total_cents},
                      {"placed_at", domain::FormatTimestamp(o.placed_at)},
                      {"paid_at", Time(o.paid_at)},
                      {"shipped_at", Time(o.shipped_at)},
                      {"delivered_at", Time(o.delivered_at)},
                      {"cancelled_at", Time(o.cancelled_at)},
                      {"payment_reference", Opt(o.payment_reference)},
                      {"tracking_number", Opt(o.tracking_number)},
                      {"cancel_reason", Opt(o.cancel_reason)},
                      {"version", o.version}};
}

json::object OrderJson(const app::OrderView& o) {
  json::object out = SummaryJson(o);
  json::array lines;
  for (const auto& l : o.lines) {
    lines.push_back(json::object{{"product_id", l.product_id},
                                 {"sku", l.sku},
                                 {"product_name", l.product_name},
                                 {"quantity", l.quantity},
                                 {"unit_price_cents", l.unit_price_cents},
                                 {"line_total_cents", l.line_total_cents}});
  }
  // Keep the documented field order: lines right after status.
  json::object ordered;
  for (const auto& [key, value] : out) {
    ordered[key] = value;
    if (key == "status") ordered["lines"] = std::move(lines);
  }
  return ordered;
}

Response JsonOk(const json::object& body) { return Response::Json(200, json::serialize(body)); }

Response PageJson(const app::OrderPage& page) {
  json::array items;
  for (const auto& item : page.items) items.push_back(SummaryJson(item));
  return JsonOk(json::object{{"items", std::move(items)}, {"next_cursor", Opt(page.next_cursor)}});
}

template <class T>
Outcome Mapped(domain::Result<T> result, auto&& render) {
  if (!result) return std::unexpected(FromError(result.error()));
  return render(*result);
}

// ---- who may see what ----

// Customers see their own orders only; every other principal the route admits sees them all.
bool MayRead(const app::Principal& who, std::string_view customer_id) {
  return !who.IsCustomer() || who.subject == customer_id;
}

// revenue_cents of products is answered to admins only (null for customers).
json::value RevenueFor(const app::Principal& who, std::int64_t revenue_cents) {
  return who.Unrestricted() ? json::value(revenue_cents) : json::value(nullptr);
}

// ---- queries ----

struct Context {
  app::ReadModel& model;
  const cqrs::ConsistencyTokens& tokens;
  const cqrs::ProgressTracker& progress;
  QueryRouteOptions options;
};

Outcome GetOrder(Context& c, const Request& request) {
  auto id = domain::OrderId::Parse(request.PathParam("id"));
  if (!id) return std::unexpected(NotFound("order not found"));
  auto order = c.model.GetOrder(*id);
  // Another customer's order is not revealed: not found, as if it did not exist.
  if (!order || !MayRead(PrincipalOf(request), order->customer_id)) {
    return std::unexpected(NotFound("order not found"));
  }
  // The order shows its customer's details, which a parked customer event would change.
  if (ParkedAfterRead(request, c.tokens, c.progress, {Key("customer", order->customer_id)})) {
    return std::unexpected(Parked());
  }
  return JsonOk(OrderJson(*order));
}

Outcome ListOrders(Context& c, const Request& request) {
  app::OrderListQuery query;
  auto limit = Limit(request);
  if (!limit) return std::unexpected(limit.error());
  query.limit = *limit;
  query.cursor = OptionalParam(request, "cursor");
  if (auto status = OptionalParam(request, "status"); status && !status->empty()) {
    if (!domain::ParseOrderStatus(*status)) {
      return std::unexpected(
          ValidationFailed("status must be one of placed, paid, shipped, delivered, cancelled"));
    }
    query.status = std::move(status);
  }
  if (auto customer = OptionalParam(request, "customer_id"); customer && !customer->empty()) {
    query.customer_id = domain::CustomerId::Parse(*customer);
    if (!query.customer_id) return std::unexpected(ValidationFailed("customer_id must be a UUID"));
  }
  // A customer lists its own orders only: another customer_id lists nothing.
  if (const app::Principal who = PrincipalOf(request); who.IsCustomer()) {
    if (query.customer_id && !who.IsCustomer(*query.customer_id)) {
      return PageJson(app::OrderPage{});
    }
    query.customer_id = domain::CustomerId::Parse(who.subject);
  }
  return Mapped(c.model.ListOrders(query), PageJson);
}

Outcome ListCustomerOrders(Context& c, const Request& request) {
  auto id = domain::CustomerId::Parse(request.PathParam("id"));
  if (!id) return std::unexpected(NotFound("customer not found"));
  auto limit = Limit(request);
  if (!limit) return std::unexpected(limit.error());
  if (!c.model.GetCustomer(*id)) return std::unexpected(NotFound("customer not found"));
  return Mapped(c.model.ListCustomerOrders(*id, *limit, OptionalParam(request, "cursor")),
                PageJson);
}

Outcome GetCustomer(Context& c, const Request& request) {
  auto id = domain::CustomerId::Parse(request.PathParam("id"));
  if (!id) return std::unexpected(NotFound("customer not found"));
  auto customer = c.model.GetCustomer(*id);
  if (!customer) return std::unexpected(NotFound("customer not found"));
  return JsonOk(json::object{{"id", customer->id},
                             {"name", customer->name},
                             {"email", customer->email},
                             {"order_count", customer->order_count},
                             {"lifetime_value_cents", customer->lifetime_value_cents},
                             {"version", customer->version}});
}

Outcome GetProduct(Context& c, const Request& request) {
  auto id = domain::ProductId::Parse(request.PathParam("id"));
  if (!id) return std::unexpected(NotFound("product not found"));
  auto product = c.model.GetProduct(*id);
  if (!product) return std::unexpected(NotFound("product not found"));
  return JsonOk(
      json::object{{"id", product->id},
                   {"sku", product->sku},
                   {"name", product->name},
                   {"price_cents", product->price_cents},
                   {"stock", product->stock},
                   {"units_sold", product->units_sold},
                   {"revenue_cents", RevenueFor(PrincipalOf(request), product->revenue_cents)},
                   {"version", product->version}});
}

Outcome TopProducts(Context& c, const Request& request) {
  auto limit = Limit(request);
  if (!limit) return std::unexpected(limit.error());
  const app::Principal who = PrincipalOf(request);
  return Mapped(c.model.TopProducts(*limit), [&](const std::vector<app::TopProduct>& top) {
    json::array items;
    for (const auto& p : top) {
      items.push_back(json::object{{"product_id", p.product_id},
                                   {"sku", p.sku},
                                   {"name", p.name},
                                   {"units_sold", p.units_sold},
                                   {"revenue_cents", RevenueFor(who, p.revenue_cents)}});
    }
    return JsonOk(json::object{{"items", std::move(items)}});
  });
}

Outcome SearchOrders(Context& c, const Request& request) {
  app::OrderSearchQuery query;
  auto limit = Limit(request);
  if (!limit) return std::unexpected(limit.error());
  query.limit = *limit;
  auto q = request.Query("q");
  if (!q || q->empty()) return std::unexpected(ValidationFailed("q is required"));
  if (q->size() > 200) return std::unexpected(ValidationFailed("q must be 1..200 characters"));
  query.q = std::string(*q);
  if (auto status = OptionalParam(request, "status"); status && !status->empty()) {
    if (!domain::ParseOrderStatus(*status)) {
      return std::unexpected(
          ValidationFailed("status must be one of placed, paid, shipped, delivered, cancelled"));
    }
    query.status = std::move(status);
  }
  for (const auto& [name, day] : {std::pair{"from", &query.from}, std::pair{"to", &query.to}}) {
    if (auto text = request.Query(name); !text || text->empty()) continue;
    auto parsed = DateParam(request, name);
    if (!parsed) return std::unexpected(parsed.error());
    *day = *parsed;
  }
  if (query.from && query.to && *query.to < *query.from) {
    return std::unexpected(ValidationFailed("to must not be before from"));
  }
  query.cursor = OptionalParam(request, "cursor");
  // A customer searches its own orders only: the search filters by customer, so its matches
  // are never crowded out by other customers' (a subject that is no customer id finds nothing).
  const app::Principal who = PrincipalOf(request);
  if (who.IsCustomer()) {
    const auto self = domain::CustomerId::Parse(who.subject);
    if (!self) return JsonOk(json::object{{"items", json::array()}, {"next_cursor", nullptr}});
    query.customer_id = *self;
  }
  return Mapped(c.model.SearchOrders(query), PageJson);
}

Outcome DailySales(Context& c, const Request& request) {
  auto from = DateParam(request, "from");
  if (!from) return std::unexpected(from.error());
  auto to = DateParam(request, "to");
  if (!to) return std::unexpected(to.error());
  if (*to < *from) return std::unexpected(ValidationFailed("to must not be before from"));
  if ((*to - *from).count() >= 366) {
    return std::unexpected(ValidationFailed("the range may span at most 366 days"));
  }
  return Mapped(c.model.DailySales(*from, *to), [](const std::vector<app::DailySalesItem>& days) {
    json::array items;
    for (const auto& day : days) {
      const std::chrono::year_month_day ymd(day.date);
      items.push_back(json::object{
          {"date",
           fmt::format("{:04d}-{:02d}-{:02d}", static_cast<int>(ymd.year()),
                       static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()))},
          {"orders_placed", day.orders_placed},
          {"orders_paid", day.orders_paid},
          {"revenue_cents", day.revenue_cents}});
    }
    return JsonOk(json::object{{"items", std::move(items)}});
  });
}

std::vector<std::string> DailyKeys(const Request& r) {
  auto from = DateParam(r, "from");
  auto to = DateParam(r, "to");
  if (!from || !to || *to < *from || (*to - *from).count() >= 366) return {};  // answered 400
  std::vector<std::string> keys;
  for (auto day = *from; day <= *to; day += std::chrono::days(1)) {
    keys.push_back("day:" + std::to_string(day.time_since_epoch().count()));
  }
  return keys;
}

using QueryFn = Outcome (*)(Context&, const Request&);

// `also` (may be null): a second store whose progress the query waits for.
Handler Query(std::shared_ptr<Context> context, infra::metrics::Registry& registry,
              std::string name, QueryFn fn, KeysFn keys,
              const cqrs::ProgressTracker* also = nullptr) {
  auto& total = registry.AddCounter("shopcqrs_queries_total",
                                    "Queries answered over HTTP, by query and outcome (ok or the "
                                    "problem code).",
                                    {"query", "outcome"});
  auto& duration = registry.AddHistogram(
      "shopcqrs_query_duration_seconds",
      "Time to answer a query over HTTP, including any wait for a consistency token.", {"query"});
  auto* ok = &total.WithLabels({name, "ok"});
  auto* observed = &duration.WithLabels({name});
  return [context, &total, ok, observed, name, fn, keys, also](const Request& request) -> Response {
    const auto start = std::chrono::steady_clock::now();
    Outcome outcome = [&]() -> Outcome {
      if (auto ready =
              AwaitConsistency(request, context->tokens, context->progress, also, context->options,
                               TokenOf(request) ? keys(request) : std::vector<std::string>{});
          !ready) {
        return std::unexpected(ready.error());
      }
      try {
        return fn(*context, request);
      } catch (const app::StoreUnavailable& e) {
        spdlog::warn("query {} failed: store unavailable request_id={} error={}", name,
                     request.request_id, e.what());
        return std::unexpected(
            ServiceUnavailable("service_unavailable", "the read store is unavailable", 1));
      }
    }();
    observed->Observe(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    if (outcome) {
      ok->Inc();
      return std::move(*outcome);
    }
    total.WithLabels({name, outcome.error().code}).Inc();
    return ToResponse(outcome.error());
  };
}

}  // namespace

void RegisterQueryRoutes(Router& router, app::ReadModel& model,
                         const cqrs::ConsistencyTokens& tokens,
                         const cqrs::ProgressTracker& progress, infra::metrics::Registry& registry,
                         const cqrs::ProgressTracker* cache_progress, QueryRouteOptions options,
                         const cqrs::ProgressTracker* search_progress) {
  auto context = std::make_shared<Context>(Context{model, tokens, progress, options});
  auto add = [&](std::string_view name, QueryFn fn, KeysFn keys,
                 const cqrs::ProgressTracker* store_progress) {
    const RouteSpec& route = Route(name);
    router.Add(route.method, route.pattern,
               Query(context, registry, std::string(route.name), fn, keys, store_progress));
  };
  // In the table's order, so that /v1/products/top is registered before /v1/products/{id}.
  add("get_order", GetOrder, OrderKeys, cache_progress);
  add("list_orders", ListOrders, OrderListKeys, nullptr);
  add("customer_orders", ListCustomerOrders, CustomerKeys, nullptr);
  add("get_customer", GetCustomer, CustomerKeys, nullptr);
  add("top_products", TopProducts, AnyProduct, cache_progress);
  add("get_product", GetProduct, ProductKeys, nullptr);
  add("search_orders", SearchOrders, AnyOrder, search_progress);
  add("daily_sales", DailySales, DailyKeys, nullptr);
}

}  // namespace shopcqrs::adapters::http
