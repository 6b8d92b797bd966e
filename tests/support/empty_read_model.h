#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "application/read_model.h"

namespace shopcqrs::test_support {

// Answers every query with nothing (the consistency waits are what is tested here).
class EmptyReadModel final : public app::ReadModel {
 public:
  std::optional<app::OrderView> GetOrder(const domain::OrderId&) override { return std::nullopt; }
  domain::Result<app::OrderPage> ListOrders(const app::OrderListQuery&) override {
    return app::OrderPage{};
  }
  domain::Result<app::OrderPage> ListCustomerOrders(const domain::CustomerId&, int,
                                                    const std::optional<std::string>&) override {
    return app::OrderPage{};
  }
  std::optional<app::CustomerView> GetCustomer(const domain::CustomerId&) override {
    return std::nullopt;
  }
  std::optional<app::ProductView> GetProduct(const domain::ProductId&) override {
    return std::nullopt;
  }
  domain::Result<std::vector<app::TopProduct>> TopProducts(int) override {
    return std::vector<app::TopProduct>{};
  }
  domain::Result<app::OrderPage> SearchOrders(const app::OrderSearchQuery& query) override {
    ++searches;
    last_search = query;
    return app::OrderPage{};
  }
  domain::Result<std::vector<app::DailySalesItem>> DailySales(std::chrono::sys_days,
                                                              std::chrono::sys_days) override {
    return std::vector<app::DailySalesItem>{};
  }
  int searches = 0;
  std::optional<app::OrderSearchQuery> last_search;
};

}  // namespace shopcqrs::test_support
