#pragma once

#include <string>
#include <string_view>

#include "adapters/pg/pool.h"
#include "application/read_model.h"

namespace shopcqrs::adapters::pg_single {

// Single-database mode (query_source = "write"): the query port answered by normalized joins
// and aggregates on the WRITE database, with exactly the answers of pg_read::PgReadModel for
// the same data (same order, same paging, same cursors). The honest baseline for the
// benchmarks of the separated read database, and a migration path for an installation that
// does not run a read database yet. Every statement is read-only.

// Pool options for queries on the write database: UTC session, read-only transactions,
// statements prepared on every connection. Use a pool of its own, never the command pool.
pg::Pool::Options SinglePoolOptions(std::string conninfo, int size);

class PgSingleReadModel final : public app::ReadModel {
 public:
  explicit PgSingleReadModel(pg::Pool& pool);

  std::optional<app::OrderView> GetOrder(const domain::OrderId& id) override;
  domain::Result<app::OrderPage> ListOrders(const app::OrderListQuery& query) override;
  domain::Result<app::OrderPage> ListCustomerOrders(
      const domain::CustomerId& customer_id, int limit,
      const std::optional<std::string>& cursor) override;
  std::optional<app::CustomerView> GetCustomer(const domain::CustomerId& id) override;
  std::optional<app::ProductView> GetProduct(const domain::ProductId& id) override;
  domain::Result<std::vector<app::TopProduct>> TopProducts(int limit) override;
  domain::Result<std::vector<app::OrderSummary>> SearchOrders(std::string_view q,
                                                              int limit) override;
  domain::Result<std::vector<app::DailySalesItem>> DailySales(std::chrono::sys_days from,
                                                              std::chrono::sys_days to) override;

 private:
  pg::Pool& pool_;
};

}  // namespace shopcqrs::adapters::pg_single
