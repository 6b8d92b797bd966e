#include "adapters/pg_single/read_model.h"

#include <algorithm>
#include <cctype>

#include <fmt/format.h>
#include <boost/json.hpp>

#include "adapters/pg_read/read_model.h"
#include "adapters/pg_single/queries.h"
#include "domain/events.h"

namespace shopcqrs::adapters::pg_single {

namespace json = boost::json;
using pg::Params;
using pg_read::DecodeOrderCursor;
using pg_read::EncodeOrderCursor;

// The row decoding, limits, cursors and search words below are those of pg_read's
// PgReadModel: both adapters must answer identically (tests/integration/single_db_test.cc).

namespace {

constexpr int kMaxLimit = 100;

domain::Timestamp FromMs(std::int64_t ms) {
  return domain::Timestamp(std::chrono::milliseconds(ms));
}
std::optional<domain::Timestamp> OptTime(const pg::Result& r, int row, int col) {
  if (r.IsNull(row, col)) return std::nullopt;
  return FromMs(r.Int64(row, col));
}

// Columns as in SHOPCQRS_ORDER_COLUMNS of queries.h.
app::OrderSummary SummaryFromRow(const pg::Result& r, int i) {
  app::OrderSummary o;
  o.id = r.String(i, 0);
  o.customer_id = r.String(i, 1);
  o.customer_name = r.OptString(i, 2);
  o.customer_email = r.OptString(i, 3);
  o.status = r.String(i, 4);
  o.item_count = r.Int64(i, 6);
  o.total_cents = r.Int64(i, 7);
  o.placed_at = FromMs(r.Int64(i, 8));
  o.paid_at = OptTime(r, i, 9);
  o.shipped_at = OptTime(r, i, 10);
  o.delivered_at = OptTime(r, i, 11);
  o.cancelled_at = OptTime(r, i, 12);
  o.payment_reference = r.OptString(i, 13);
  o.tracking_number = r.OptString(i, 14);
  o.cancel_reason = r.OptString(i, 15);
  o.version = r.Int64(i, 16);
  return o;
}

std::vector<app::OrderLineView> LinesFromJson(std::string_view text) {
  std::vector<app::OrderLineView> lines;
  const json::value parsed = json::parse(text);
  for (const auto& v : parsed.as_array()) {
    const auto& l = v.as_object();
    lines.push_back(app::OrderLineView{
        std::string(l.at("product_id").as_string()), std::string(l.at("sku").as_string()),
        std::string(l.at("product_name").as_string()), l.at("quantity").to_number<std::int64_t>(),
        l.at("unit_price_cents").to_number<std::int64_t>(),
        l.at("line_total_cents").to_number<std::int64_t>()});
  }
  return lines;
}

domain::Result<int> CheckLimit(int limit) {
  if (limit < 1 || limit > kMaxLimit) {
    return std::unexpected(domain::ValidationFailed("limit must be between 1 and 100"));
  }
  return limit;
}

// Cursor parameters ($1 placed_at, $2 id) of a keyset page; the first page starts above all.
domain::Result<Params> CursorParams(const std::optional<std::string>& cursor) {
  Params params;
  if (!cursor) {
    params.Add("infinity").Add("ffffffff-ffff-ffff-ffff-ffffffffffff");
    return params;
  }
  auto decoded = DecodeOrderCursor(*cursor);
  if (!decoded) return std::unexpected(domain::ValidationFailed("cursor is not valid"));
  params.Add(domain::FormatTimestamp(decoded->first)).Add(decoded->second.ToString());
  return params;
}

app::OrderPage PageFrom(const pg::Result& rows, int limit) {
  app::OrderPage page;
  const int n = std::min(rows.rows(), limit);
  page.items.reserve(n);
  for (int i = 0; i < n; ++i) page.items.push_back(SummaryFromRow(rows, i));
  if (rows.rows() > limit && !page.items.empty()) {
    const auto& last = page.items.back();
    page.next_cursor = EncodeOrderCursor(last.placed_at, *domain::Uuid::Parse(last.id));
  }
  return page;
}

std::string DateText(std::chrono::sys_days day) {
  const std::chrono::year_month_day ymd(day);
  return fmt::format("{:04}-{:02}-{:02}", static_cast<int>(ymd.year()),
                     static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()));
}

// A text[] literal whose elements are quoted.
std::string TextArray(const std::vector<std::string>& items) {
  std::string out = "{";
  for (const auto& item : items) {
    if (out.size() > 1) out.push_back(',');
    out.push_back('"');
    for (char c : item) {
      if (c == '"' || c == '\\') out.push_back('\\');
      out.push_back(c);
    }
    out.push_back('"');
  }
  out.push_back('}');
  return out;
}

}  // namespace

pg::Pool::Options SinglePoolOptions(std::string conninfo, int size) {
  pg::Pool::Options options;
  options.conninfo = std::move(conninfo);
  options.size = size;
  options.on_connect = [](pg::Connection& connection) {
    connection.Exec(
        "SET application_name = 'shopcqrs-single'; SET TimeZone = 'UTC'; "
        "SET default_transaction_read_only = on");
    connection.PrepareAll(queries::All());
  };
  return options;
}

PgSingleReadModel::PgSingleReadModel(pg::Pool& pool) : pool_(pool) {}

std::optional<app::OrderView> PgSingleReadModel::GetOrder(const domain::OrderId& id) {
  auto lease = pool_.Acquire();
  auto rows = lease->ExecPrepared(queries::kGetOrder, Params().Add(id.ToString()));
  if (rows.rows() == 0) return std::nullopt;
  app::OrderView view;
  static_cast<app::OrderSummary&>(view) = SummaryFromRow(rows, 0);
  view.lines = LinesFromJson(rows.Text(0, 5));
  return view;
}

domain::Result<app::OrderPage> PgSingleReadModel::ListOrders(const app::OrderListQuery& query) {
  auto limit = CheckLimit(query.limit);
  if (!limit) return std::unexpected(limit.error());
  if (query.status && !domain::ParseOrderStatus(*query.status)) {
    return std::unexpected(domain::ValidationFailed("status is not an order status"));
  }
  auto params = CursorParams(query.cursor);
  if (!params) return std::unexpected(params.error());
  params->Add(*limit + 1);
  const pg::Statement* statement = &queries::kListOrders;
  if (query.customer_id) {
    statement = &queries::kListOrdersByCustomer;
    params->Add(query.customer_id->ToString()).Add(query.status);
  } else if (query.status) {
    statement = &queries::kListOrdersByStatus;
    params->Add(*query.status);
  }
  auto lease = pool_.Acquire();
  return PageFrom(lease->ExecPrepared(*statement, *params), *limit);
}

domain::Result<app::OrderPage> PgSingleReadModel::ListCustomerOrders(
    const domain::CustomerId& customer_id, int limit, const std::optional<std::string>& cursor) {
  return ListOrders(app::OrderListQuery{std::nullopt, customer_id, limit, cursor});
}

std::optional<app::CustomerView> PgSingleReadModel::GetCustomer(const domain::CustomerId& id) {
  auto lease = pool_.Acquire();
  auto r = lease->ExecPrepared(queries::kGetCustomer, Params().Add(id.ToString()));
  if (r.rows() == 0) return std::nullopt;
  return app::CustomerView{r.String(0, 0), r.String(0, 1), r.String(0, 2),
                           r.Int64(0, 3),  r.Int64(0, 4),  r.Int64(0, 5)};
}

std::optional<app::ProductView> PgSingleReadModel::GetProduct(const domain::ProductId& id) {
  auto lease = pool_.Acquire();
  auto r = lease->ExecPrepared(queries::kGetProduct, Params().Add(id.ToString()));
  if (r.rows() == 0) return std::nullopt;
  return app::ProductView{r.String(0, 0), r.String(0, 1), r.String(0, 2), r.Int64(0, 3),
                          r.Int64(0, 4),  r.Int64(0, 5),  r.Int64(0, 6),  r.Int64(0, 7)};
}

domain::Result<std::vector<app::TopProduct>> PgSingleReadModel::TopProducts(int limit) {
  auto checked = CheckLimit(limit);
  if (!checked) return std::unexpected(checked.error());
  auto lease = pool_.Acquire();
  auto r = lease->ExecPrepared(queries::kTopProducts, Params().Add(limit));
  std::vector<app::TopProduct> items;
  for (int i = 0; i < r.rows(); ++i) {
    items.push_back(app::TopProduct{r.String(i, 0), r.String(i, 1), r.String(i, 2), r.Int64(i, 3),
                                    r.Int64(i, 4)});
  }
  return items;
}

domain::Result<std::vector<app::OrderSummary>> PgSingleReadModel::SearchOrders(std::string_view q,
                                                                               int limit) {
  auto checked = CheckLimit(limit);
  if (!checked) return std::unexpected(checked.error());
  std::vector<std::string> patterns;
  std::string word;
  auto flush = [&] {
    if (!word.empty()) patterns.push_back("%" + word + "%");
    word.clear();
  };
  for (char c : q) {
    if (std::isspace(static_cast<unsigned char>(c))) {
      flush();
    } else {
      if (c == '%' || c == '_' || c == '\\') word.push_back('\\');
      word.push_back(c);
    }
  }
  flush();
  if (patterns.empty() || q.size() > 200 || patterns.size() > 10) {
    return std::unexpected(
        domain::ValidationFailed("q must hold 1..10 words and at most 200 characters"));
  }
  auto lease = pool_.Acquire();
  auto r =
      lease->ExecPrepared(queries::kSearchOrders, Params().Add(TextArray(patterns)).Add(limit));
  std::vector<app::OrderSummary> items;
  for (int i = 0; i < r.rows(); ++i) items.push_back(SummaryFromRow(r, i));
  return items;
}

domain::Result<std::vector<app::DailySalesItem>> PgSingleReadModel::DailySales(
    std::chrono::sys_days from, std::chrono::sys_days to) {
  if (to < from) return std::unexpected(domain::ValidationFailed("to is before from"));
  if ((to - from).count() >= 366) {
    return std::unexpected(domain::ValidationFailed("the range is longer than 366 days"));
  }
  auto lease = pool_.Acquire();
  auto r =
      lease->ExecPrepared(queries::kDailySales, Params().Add(DateText(from)).Add(DateText(to)));
  std::vector<app::DailySalesItem> items;
  for (int i = 0; i < r.rows(); ++i) {
    items.push_back(app::DailySalesItem{std::chrono::sys_days(std::chrono::days(r.Int64(i, 0))),
                                        r.Int64(i, 1), r.Int64(i, 2), r.Int64(i, 3)});
  }
  return items;
}

}  // namespace shopcqrs::adapters::pg_single
