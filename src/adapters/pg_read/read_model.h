#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "application/read_model.h"
#include "infra/pg/pool.h"

namespace shopcqrs::adapters::pg_read {

// Pool options for the read database: UTC session, statements prepared on every connection.
infra::pg::Pool::Options ReadPoolOptions(std::string conninfo, int size);

// Opaque keyset cursor of the order lists: the last item's (placed_at, id).
std::string EncodeOrderCursor(domain::Timestamp placed_at, const domain::Uuid& id);
std::optional<std::pair<domain::Timestamp, domain::Uuid>> DecodeOrderCursor(std::string_view text);

// Opaque keyset cursor of a search: the last item's (rank, placed_at, id).
struct SearchCursor {
  int rank = 0;
  domain::Timestamp placed_at{};
  domain::Uuid id;
};
std::string EncodeSearchCursor(const SearchCursor& cursor);
std::optional<SearchCursor> DecodeSearchCursor(std::string_view text);

// The query side over the read database (read pool only).
// The statements a query model runs. Every set returns the same columns, so one model serves
// the flat read database (pg_read) and the joins on the write database (pg_single).
struct QueryStatements {
  const infra::pg::Statement* get_order;
  const infra::pg::Statement* list_orders;
  const infra::pg::Statement* list_orders_by_customer;
  const infra::pg::Statement* list_orders_by_status;
  const infra::pg::Statement* get_customer;
  const infra::pg::Statement* get_product;
  const infra::pg::Statement* top_products;
  const infra::pg::Statement* search_orders;
  const infra::pg::Statement* daily_sales;
};
const QueryStatements& ReadStatements();  // pg_read's denormalized views

class PgReadModel : public app::ReadModel {
 public:
  explicit PgReadModel(infra::pg::Pool& pool) : PgReadModel(pool, ReadStatements()) {}
  PgReadModel(infra::pg::Pool& pool, const QueryStatements& statements);

  std::optional<app::OrderView> GetOrder(const domain::OrderId& id) override;
  domain::Result<app::OrderPage> ListOrders(const app::OrderListQuery& query) override;
  domain::Result<app::OrderPage> ListCustomerOrders(
      const domain::CustomerId& customer_id, int limit,
      const std::optional<std::string>& cursor) override;
  std::optional<app::CustomerView> GetCustomer(const domain::CustomerId& id) override;
  std::optional<app::ProductView> GetProduct(const domain::ProductId& id) override;
  domain::Result<std::vector<app::TopProduct>> TopProducts(int limit) override;
  domain::Result<app::OrderPage> SearchOrders(const app::OrderSearchQuery& query) override;
  domain::Result<std::vector<app::DailySalesItem>> DailySales(std::chrono::sys_days from,
                                                              std::chrono::sys_days to) override;

 private:
  // Acquires a connection and runs one statement; a lost connection (or none to be had) is
  // app::StoreUnavailable, the port's word for a store that cannot be reached.
  infra::pg::Result Run(const infra::pg::Statement& statement, const infra::pg::Params& params);

  infra::pg::Pool& pool_;
  const QueryStatements& q_;
};

}  // namespace shopcqrs::adapters::pg_read
