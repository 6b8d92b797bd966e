#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "adapters/pg/pool.h"
#include "application/read_model.h"

namespace shopcqrs::adapters::pg_read {

// Pool options for the read database: UTC session, statements prepared on every connection.
pg::Pool::Options ReadPoolOptions(std::string conninfo, int size);

// Opaque keyset cursor of the order lists: the last item's (placed_at, id).
std::string EncodeOrderCursor(domain::Timestamp placed_at, const domain::Uuid& id);
std::optional<std::pair<domain::Timestamp, domain::Uuid>> DecodeOrderCursor(std::string_view text);

// The query side over the read database (read pool only).
class PgReadModel final : public app::ReadModel {
 public:
  explicit PgReadModel(pg::Pool& pool);

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

}  // namespace shopcqrs::adapters::pg_read
