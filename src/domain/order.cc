#include "domain/order.h"

#include <string_view>
#include <utility>

namespace shopcqrs::domain {
namespace {

Error CannotFrom(std::string_view action, OrderStatus status) {
  std::string detail = "cannot ";
  detail += action;
  detail += " an order in status ";
  detail += ToString(status);
  return InvalidTransition(std::move(detail));
}

// Validates the requested lines and merges repeated product ids (quantities summed, the first
// occurrence keeps its position).
Result<std::vector<LineRequest>> ValidateAndMerge(const std::vector<LineRequest>& requested) {
  if (requested.empty() || requested.size() > kMaxOrderLines) {
    return std::unexpected(ValidationFailed("lines must contain between 1 and " +
                                            std::to_string(kMaxOrderLines) + " items"));
  }
  std::vector<LineRequest> merged;
  std::map<ProductId, std::size_t> position;
  for (std::size_t i = 0; i < requested.size(); ++i) {
    const LineRequest& line = requested[i];
    auto quantity =
        CheckRange(line.quantity, 1, kMaxLineQuantity, "lines[" + std::to_string(i) + "].quantity");
    if (!quantity) return std::unexpected(quantity.error());
    auto [it, inserted] = position.try_emplace(line.product_id, merged.size());
    if (inserted) {
      merged.push_back(line);
    } else {
      merged[it->second].quantity += line.quantity;
    }
  }
  return merged;
}

}  // namespace

Order::Order(State state)
    : id_(state.id),
      customer_id_(state.customer_id),
      status_(state.status),
      lines_(std::move(state.lines)),
      total_cents_(state.total_cents),
      version_(state.version) {}

Result<Order> Order::Place(OrderId id, CustomerId customer_id,
                           const std::vector<LineRequest>& requested,
                           std::map<ProductId, Product>& products, Timestamp now) {
  auto merged = ValidateAndMerge(requested);
  if (!merged) return std::unexpected(merged.error());

  // Check everything before changing any product: all products known, then all stock there.
  for (const LineRequest& line : *merged) {
    if (!products.contains(line.product_id)) {
      return std::unexpected(
          BusinessRule("unknown_product", "unknown product " + line.product_id.ToString()));
    }
  }
  for (const LineRequest& line : *merged) {
    Product trial = products.at(line.product_id);
    if (auto reserved = trial.Reserve(line.quantity); !reserved) {
      return std::unexpected(reserved.error());
    }
  }

  std::vector<PlacedLine> lines;
  lines.reserve(merged->size());
  std::int64_t total_cents = 0;
  for (const LineRequest& line : *merged) {
    Product& product = products.at(line.product_id);
    if (auto reserved = product.Reserve(line.quantity); !reserved) {
      // Unreachable after the trial above; kept so a broken invariant never goes unnoticed.
      return std::unexpected(reserved.error());
    }
    PlacedLine placed{line.product_id, product.sku(), product.name(), line.quantity,
                      product.price_cents()};
    total_cents += placed.line_total_cents();
    lines.push_back(std::move(placed));
  }

  Order order(State{id, customer_id, OrderStatus::kPlaced, std::move(lines), total_cents, 0});
  order.Record(OrderPlaced{id, customer_id, order.lines_, order.total_cents_}, now);
  return order;
}

Order Order::Rehydrate(State state) { return Order(std::move(state)); }

Result<void> Order::Pay(std::int64_t amount_cents, std::string payment_reference, Timestamp now) {
  // Bad input is a validation error whatever the state; then the state, then the amount.
  auto reference =
      CheckText(std::move(payment_reference), 1, kMaxReferenceChars, "payment_reference");
  if (!reference) return std::unexpected(reference.error());
  if (status_ != OrderStatus::kPlaced) return std::unexpected(CannotFrom("pay", status_));
  if (amount_cents != total_cents_) {
    return std::unexpected(BusinessRule(
        "amount_mismatch", "amount_cents " + std::to_string(amount_cents) +
                               " does not match the order total " + std::to_string(total_cents_)));
  }

  status_ = OrderStatus::kPaid;
  Record(OrderPaid{id_, customer_id_, amount_cents, std::move(*reference), lines_}, now);
  return {};
}

Result<void> Order::Ship(std::string tracking_number, Timestamp now) {
  auto tracking = CheckText(std::move(tracking_number), 1, kMaxReferenceChars, "tracking_number");
  if (!tracking) return std::unexpected(tracking.error());
  if (status_ != OrderStatus::kPaid) return std::unexpected(CannotFrom("ship", status_));

  status_ = OrderStatus::kShipped;
  Record(OrderShipped{id_, customer_id_, std::move(*tracking)}, now);
  return {};
}

Result<void> Order::Deliver(Timestamp now) {
  if (status_ != OrderStatus::kShipped) return std::unexpected(CannotFrom("deliver", status_));

  status_ = OrderStatus::kDelivered;
  Record(OrderDelivered{id_, customer_id_}, now);
  return {};
}

Result<void> Order::Cancel(std::string reason, Timestamp now) {
  auto valid_reason = CheckText(std::move(reason), 0, kMaxCancelReasonChars, "reason");
  if (!valid_reason) return std::unexpected(valid_reason.error());
  if (status_ != OrderStatus::kPlaced && status_ != OrderStatus::kPaid) {
    return std::unexpected(CannotFrom("cancel", status_));
  }

  const OrderStatus previous = status_;
  const std::int64_t refunded_cents = previous == OrderStatus::kPaid ? total_cents_ : 0;
  status_ = OrderStatus::kCancelled;
  Record(
      OrderCancelled{id_, customer_id_, std::move(*valid_reason), refunded_cents, previous, lines_},
      now);
  return {};
}

void Order::Record(EventPayload payload, Timestamp now) {
  ++version_;
  pending_.push_back(DomainEvent{std::move(payload), version_, now});
}

}  // namespace shopcqrs::domain
