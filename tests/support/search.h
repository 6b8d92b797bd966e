#pragma once

// Search through the query port with the defaults of GET /v1/search/orders (no filters, first
// page): the items only.

#include <string>
#include <string_view>
#include <vector>

#include "application/read_model.h"

namespace shopcqrs::test_support {

inline domain::Result<std::vector<app::OrderSummary>> Search(app::ReadModel& model,
                                                             std::string_view q, int limit) {
  auto page = model.SearchOrders(app::OrderSearchQuery{.q = std::string(q), .limit = limit});
  if (!page) return std::unexpected(page.error());
  return std::move(page->items);
}

}  // namespace shopcqrs::test_support
