#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "domain/error.h"
#include "domain/events.h"
#include "domain/ids.h"
#include "domain/product.h"
#include "domain/values.h"

namespace shopcqrs::domain {

struct LineRequest {
  ProductId product_id;
  std::int64_t quantity;
};

class Order {
 public:
  // Places an order: 1..100 requested lines, each quantity 1..1000 (validation_failed naming
  // "lines[i].quantity" / "lines"); repeated product ids are merged (quantities summed, first
  // occurrence keeps its position). Every product must be in `products` (else 422
  // unknown_product); each merged line reserves stock on its product (409 insufficient_stock,
  // and then no product is changed). Captures sku, name and unit price at this moment; records
  // OrderPlaced. Products are changed only when the whole placement succeeds.
  static Result<Order> Place(OrderId id, CustomerId customer_id,
                             const std::vector<LineRequest>& requested,
                             std::map<ProductId, Product>& products, Timestamp now);

  struct State {
    OrderId id;
    CustomerId customer_id;
    OrderStatus status;
    std::vector<PlacedLine> lines;
    std::int64_t total_cents;
    std::int64_t version;
  };
  static Order Rehydrate(State state);

  // placed -> paid; amount must equal the total (422 amount_mismatch); reference 1..100.
  Result<void> Pay(std::int64_t amount_cents, std::string payment_reference, Timestamp now);
  // paid -> shipped; tracking number 1..100.
  Result<void> Ship(std::string tracking_number, Timestamp now);
  // shipped -> delivered.
  Result<void> Deliver(Timestamp now);
  // placed|paid -> cancelled; reason 0..500; a paid order records a refund of its total. The
  // caller returns each line's quantity to its product (see lines()).
  Result<void> Cancel(std::string reason, Timestamp now);

  const OrderId& id() const { return id_; }
  const CustomerId& customer_id() const { return customer_id_; }
  OrderStatus status() const { return status_; }
  const std::vector<PlacedLine>& lines() const { return lines_; }
  std::int64_t total_cents() const { return total_cents_; }
  std::int64_t version() const { return version_; }
  const std::vector<DomainEvent>& pending_events() const { return pending_; }

 private:
  explicit Order(State state);
  void Record(EventPayload payload, Timestamp now);

  OrderId id_;
  CustomerId customer_id_;
  OrderStatus status_ = OrderStatus::kPlaced;
  std::vector<PlacedLine> lines_;
  std::int64_t total_cents_ = 0;
  std::int64_t version_ = 0;
  std::vector<DomainEvent> pending_;
};

}  // namespace shopcqrs::domain
