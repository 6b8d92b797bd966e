#include "adapters/pg_read/read_model.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <limits>

#include <fmt/format.h>
#include <boost/json.hpp>

#include "adapters/pg_read/queries.h"
#include "adapters/pg_read/view_rows.h"
#include "application/ports.h"
#include "domain/events.h"

namespace shopcqrs::adapters::pg_read {

namespace json = boost::json;
using infra::pg::Params;
using namespace rows;  // NOLINT: the shared row helpers

namespace {

constexpr std::string_view kCursorPrefix = "c1.";
constexpr std::string_view kSearchCursorPrefix = "s1.";

}  // namespace

infra::pg::Pool::Options ReadPoolOptions(std::string conninfo, int size) {
  infra::pg::Pool::Options options;
  options.conninfo = std::move(conninfo);
  options.size = size;
  options.on_connect = [](infra::pg::Connection& connection) {
    connection.Exec("SET application_name = 'shopcqrs-read'; SET TimeZone = 'UTC'");
    connection.PrepareAll(queries::All());
  };
  return options;
}

std::string EncodeOrderCursor(domain::Timestamp placed_at, const domain::Uuid& id) {
  std::string out(kCursorPrefix);
  out += fmt::format("{:x}.", placed_at.time_since_epoch().count());
  for (auto b : id.bytes()) out += fmt::format("{:02x}", b);
  return out;
}

std::optional<std::pair<domain::Timestamp, domain::Uuid>> DecodeOrderCursor(std::string_view text) {
  if (text.size() > 64 || !text.starts_with(kCursorPrefix)) return std::nullopt;
  text.remove_prefix(kCursorPrefix.size());
  const auto dot = text.find('.');
  if (dot == std::string_view::npos || dot == 0 || dot > 15) return std::nullopt;
  std::int64_t ms = 0;
  const auto ms_text = text.substr(0, dot);
  auto [ptr, ec] = std::from_chars(ms_text.data(), ms_text.data() + ms_text.size(), ms, 16);
  if (ec != std::errc() || ptr != ms_text.data() + ms_text.size() || ms < 0) return std::nullopt;
  const auto hex = text.substr(dot + 1);
  if (hex.size() != 32) return std::nullopt;
  domain::Uuid::Bytes bytes{};
  for (std::size_t i = 0; i < 16; ++i) {
    unsigned value = 0;
    auto [p, e] = std::from_chars(hex.data() + 2 * i, hex.data() + 2 * i + 2, value, 16);
    if (e != std::errc() || p != hex.data() + 2 * i + 2) return std::nullopt;
    bytes[i] = static_cast<std::uint8_t>(value);
  }
  return std::pair{domain::Timestamp(std::chrono::milliseconds(ms)), domain::Uuid(bytes)};
}

std::string EncodeSearchCursor(const SearchCursor& cursor) {
  // s1.<rank hex>.<the order cursor of placed_at and id>
  return fmt::format("{}{:x}.{}", kSearchCursorPrefix, cursor.rank,
                     EncodeOrderCursor(cursor.placed_at, cursor.id));
}

std::optional<SearchCursor> DecodeSearchCursor(std::string_view text) {
  if (text.size() > 80 || !text.starts_with(kSearchCursorPrefix)) return std::nullopt;
  text.remove_prefix(kSearchCursorPrefix.size());
  const auto dot = text.find('.');
  if (dot == std::string_view::npos || dot == 0 || dot > 8) return std::nullopt;
  int rank = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + dot, rank, 16);
  if (ec != std::errc() || ptr != text.data() + dot || rank < 0) return std::nullopt;
  auto order = DecodeOrderCursor(text.substr(dot + 1));
  if (!order) return std::nullopt;
  return SearchCursor{rank, order->first, order->second};
}

const QueryStatements& ReadStatements() {
  static const QueryStatements kStatements{
      &queries::kGetOrder,           &queries::kListOrders,   &queries::kListOrdersByCustomer,
      &queries::kListOrdersByStatus, &queries::kGetCustomer,  &queries::kGetProduct,
      &queries::kTopProducts,        &queries::kSearchOrders, &queries::kDailySales};
  return kStatements;
}

PgReadModel::PgReadModel(infra::pg::Pool& pool, const QueryStatements& statements)
    : pool_(pool), q_(statements) {}

infra::pg::Result PgReadModel::Run(const infra::pg::Statement& statement,
                                   const infra::pg::Params& params) {
  try {
    auto lease = pool_.Acquire();
    return lease->ExecPrepared(statement, params);
  } catch (const infra::pg::ConnectionLost& error) {
    // The port's word for it: the store cannot be reached (the transport answers 503).
    throw app::StoreUnavailable(error.what());
  }
}

std::optional<app::OrderView> PgReadModel::GetOrder(const domain::OrderId& id) {
  auto rows = Run(*q_.get_order, Params().Add(id.ToString()));
  if (rows.rows() == 0) return std::nullopt;
  app::OrderView view;
  static_cast<app::OrderSummary&>(view) = SummaryFromRow(rows, 0);
  view.lines = LinesFromJson(rows.Text(0, 5));
  return view;
}

domain::Result<app::OrderPage> PgReadModel::ListOrders(const app::OrderListQuery& query) {
  auto limit = CheckLimit(query.limit);
  if (!limit) return std::unexpected(limit.error());
  if (query.status && !domain::ParseOrderStatus(*query.status)) {
    return std::unexpected(domain::ValidationFailed("status is not an order status"));
  }
  auto params = CursorParams(query.cursor);
  if (!params) return std::unexpected(params.error());
  params->Add(*limit + 1);
  const infra::pg::Statement* statement = q_.list_orders;
  if (query.customer_id) {
    statement = q_.list_orders_by_customer;
    params->Add(query.customer_id->ToString()).Add(query.status);
  } else if (query.status) {
    statement = q_.list_orders_by_status;
    params->Add(*query.status);
  }
  return PageFrom(Run(*statement, *params), *limit);
}

domain::Result<app::OrderPage> PgReadModel::ListCustomerOrders(
    const domain::CustomerId& customer_id, int limit, const std::optional<std::string>& cursor) {
  return ListOrders(app::OrderListQuery{std::nullopt, customer_id, limit, cursor});
}

std::optional<app::CustomerView> PgReadModel::GetCustomer(const domain::CustomerId& id) {
  auto r = Run(*q_.get_customer, Params().Add(id.ToString()));
  if (r.rows() == 0) return std::nullopt;
  return app::CustomerView{r.String(0, 0), r.String(0, 1), r.String(0, 2),
                           r.Int64(0, 3),  r.Int64(0, 4),  r.Int64(0, 5)};
}

std::optional<app::ProductView> PgReadModel::GetProduct(const domain::ProductId& id) {
  auto r = Run(*q_.get_product, Params().Add(id.ToString()));
  if (r.rows() == 0) return std::nullopt;
  return app::ProductView{r.String(0, 0), r.String(0, 1), r.String(0, 2), r.Int64(0, 3),
                          r.Int64(0, 4),  r.Int64(0, 5),  r.Int64(0, 6),  r.Int64(0, 7)};
}

domain::Result<std::vector<app::TopProduct>> PgReadModel::TopProducts(int limit) {
  auto checked = CheckLimit(limit);
  if (!checked) return std::unexpected(checked.error());
  auto r = Run(*q_.top_products, Params().Add(limit));
  std::vector<app::TopProduct> items;
  for (int i = 0; i < r.rows(); ++i) {
    items.push_back(app::TopProduct{r.String(i, 0), r.String(i, 1), r.String(i, 2), r.Int64(i, 3),
                                    r.Int64(i, 4)});
  }
  return items;
}

domain::Result<app::OrderPage> PgReadModel::SearchOrders(const app::OrderSearchQuery& query) {
  auto limit = CheckLimit(query.limit);
  if (!limit) return std::unexpected(limit.error());
  std::vector<std::string> words;
  std::string word;
  auto flush = [&] {
    if (!word.empty()) words.push_back(std::move(word));
    word.clear();
  };
  for (char c : query.q) {
    if (std::isspace(static_cast<unsigned char>(c))) {
      flush();
    } else {
      word.push_back(c);
    }
  }
  flush();
  if (words.empty() || query.q.size() > 200 || words.size() > 10) {
    return std::unexpected(
        domain::ValidationFailed("q must hold 1..10 words and at most 200 characters"));
  }
  if (query.status && !domain::ParseOrderStatus(*query.status)) {
    return std::unexpected(domain::ValidationFailed("status is not an order status"));
  }
  if (query.from && query.to && *query.to < *query.from) {
    return std::unexpected(domain::ValidationFailed("to is before from"));
  }
  Params params;
  params.Add(infra::pg::ArrayLiteral(words)).Add(query.status);
  params.Add(query.from ? std::optional(DateText(*query.from)) : std::nullopt);
  params.Add(query.to ? std::optional(DateText(*query.to)) : std::nullopt);
  if (query.cursor) {
    auto cursor = DecodeSearchCursor(*query.cursor);
    if (!cursor) return std::unexpected(domain::ValidationFailed("cursor is not valid"));
    params.Add(cursor->rank)
        .Add(domain::FormatTimestamp(cursor->placed_at))
        .Add(cursor->id.ToString());
  } else {
    params.Add(std::numeric_limits<int>::max())
        .Add("infinity")
        .Add("ffffffff-ffff-ffff-ffff-ffffffffffff");
  }
  params.Add(*limit + 1);
  params.Add(query.customer_id ? std::optional(query.customer_id->ToString()) : std::nullopt);
  auto r = Run(*q_.search_orders, params);
  app::OrderPage page;
  const int n = std::min(r.rows(), *limit);
  for (int i = 0; i < n; ++i) page.items.push_back(SummaryFromRow(r, i));
  if (r.rows() > *limit && n > 0) {
    const auto& last = page.items.back();
    page.next_cursor =
        EncodeSearchCursor(SearchCursor{static_cast<int>(r.Int64(n - 1, r.columns() - 1)),
                                        last.placed_at, *domain::Uuid::Parse(last.id)});
  }
  return page;
}

domain::Result<std::vector<app::DailySalesItem>> PgReadModel::DailySales(std::chrono::sys_days from,
                                                                         std::chrono::sys_days to) {
  if (to < from) return std::unexpected(domain::ValidationFailed("to is before from"));
  if ((to - from).count() >= 366) {
    return std::unexpected(domain::ValidationFailed("the range is longer than 366 days"));
  }
  auto r = Run(*q_.daily_sales, Params().Add(DateText(from)).Add(DateText(to)));
  std::vector<app::DailySalesItem> items;
  for (int i = 0; i < r.rows(); ++i) {
    items.push_back(app::DailySalesItem{std::chrono::sys_days(std::chrono::days(r.Int64(i, 0))),
                                        r.Int64(i, 1), r.Int64(i, 2), r.Int64(i, 3)});
  }
  return items;
}

}  // namespace shopcqrs::adapters::pg_read
