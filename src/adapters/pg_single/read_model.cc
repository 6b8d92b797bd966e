#include "adapters/pg_single/read_model.h"

#include <algorithm>
#include <cctype>

#include <fmt/format.h>
#include <boost/json.hpp>

#include "adapters/pg_read/read_model.h"
#include "adapters/pg_read/view_rows.h"
#include "adapters/pg_single/queries.h"
#include "domain/events.h"

namespace shopcqrs::adapters::pg_single {

namespace json = boost::json;
using pg::Params;
using pg_read::DecodeOrderCursor;
using pg_read::EncodeOrderCursor;
using namespace pg_read::rows;  // NOLINT: the shared row helpers

// Rows are decoded by pg_read's shared helpers (view_rows.h): both adapters must answer
// identically (tests/integration/single_db_test.cc).

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
  auto r = lease->ExecPrepared(queries::kSearchOrders,
                               Params().Add(pg::ArrayLiteral(patterns)).Add(limit));
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
