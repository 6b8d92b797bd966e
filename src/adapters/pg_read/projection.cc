#include "adapters/pg_read/projection.h"

#include <poll.h>

#include <charconv>
#include <exception>
#include <map>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "adapters/events/event_codec.h"
#include "adapters/pg_read/queries.h"

namespace shopcqrs::adapters::pg_read {

using pg::Params;

namespace {

struct CustomerRow {
  std::optional<std::string> name;
  std::optional<std::string> email;
  std::int64_t order_count = 0;
  std::int64_t lifetime_value_cents = 0;
  std::int64_t version = 0;
  bool dirty = false;
  bool details_changed = false;
};

struct ProductRow {
  std::optional<std::string> sku;
  std::optional<std::string> name;
  std::int64_t price_cents = 0;
  std::int64_t stock = 0;
  std::int64_t units_sold = 0;
  std::int64_t revenue_cents = 0;
  std::int64_t version = 0;
  bool dirty = false;
};

struct OrderRow {
  bool exists = false;
  bool dirty = false;
  std::string customer_id;
  std::optional<std::string> customer_name;
  std::optional<std::string> customer_email;
  std::string status;
  std::string lines;  // JSON array text
  std::int64_t item_count = 0;
  std::int64_t total_cents = 0;
  std::int64_t placed_at = 0;  // ms since the epoch
  std::optional<std::int64_t> paid_at;
  std::optional<std::int64_t> shipped_at;
  std::optional<std::int64_t> delivered_at;
  std::optional<std::int64_t> cancelled_at;
  std::optional<std::string> payment_reference;
  std::optional<std::string> tracking_number;
  std::optional<std::string> cancel_reason;
  std::int64_t version = 0;
  std::string line_text;
};

struct DayDelta {
  std::int64_t placed = 0;
  std::int64_t paid = 0;
  std::int64_t revenue = 0;
};

std::int64_t Ms(domain::Timestamp t) { return t.time_since_epoch().count(); }
int DayOf(domain::Timestamp t) {
  return static_cast<int>(std::chrono::floor<std::chrono::days>(t).time_since_epoch().count());
}

template <class Set>
std::string UuidArray(const Set& ids) {
  std::string out = "{";
  for (const auto& id : ids) {
    if (out.size() > 1) out.push_back(',');
    out += id;
  }
  out.push_back('}');
  return out;
}

// A minimal JSON text writer for the set-based writes: the rows go out as one JSON array per
// table, built by appending (no intermediate DOM, embedded JSON such as order lines is copied
// as is instead of being parsed and re-serialized).
class JsonOut {
 public:
  void BeginArray() { text_.push_back('['); }
  void EndArray() { text_.push_back(']'); }
  void BeginObject() {
    if (text_.size() > 1 && text_.back() == '}') text_.push_back(',');
    text_.push_back('{');
    first_ = true;
  }
  void EndObject() { text_.push_back('}'); }
  bool Empty() const { return text_.size() <= 1; }
  std::string Take() { return std::move(text_); }

  void Field(std::string_view key, std::string_view value) {
    Key(key);
    String(value);
  }
  void Field(std::string_view key, const std::string& value) {
    Field(key, std::string_view(value));
  }
  void Field(std::string_view key, const std::optional<std::string>& value) {
    Key(key);
    if (value) {
      String(*value);
    } else {
      text_ += "null";
    }
  }
  void Field(std::string_view key, std::int64_t value) {
    Key(key);
    fmt::format_to(std::back_inserter(text_), "{}", value);
  }
  void Field(std::string_view key, const std::optional<std::int64_t>& value) {
    Key(key);
    if (value) {
      fmt::format_to(std::back_inserter(text_), "{}", *value);
    } else {
      text_ += "null";
    }
  }
  void RawField(std::string_view key, std::string_view json) {
    Key(key);
    text_ += json;
  }
  void String(std::string_view value) { AppendString(text_, value); }

  static void AppendString(std::string& out, std::string_view value) {
    out.push_back('"');
    for (const char c : value) {
      const auto u = static_cast<unsigned char>(c);
      if (c == '"' || c == '\\') {
        out.push_back('\\');
        out.push_back(c);
      } else if (u < 0x20) {
        fmt::format_to(std::back_inserter(out), "\\u{:04x}", u);
      } else {
        out.push_back(c);
      }
    }
    out.push_back('"');
  }

 private:
  void Key(std::string_view key) {
    if (!first_) text_.push_back(',');
    first_ = false;
    text_.push_back('"');
    text_ += key;
    text_ += "\":";
  }
  std::string text_;
  bool first_ = true;
};

std::uint64_t ToU64(std::int64_t v) { return static_cast<std::uint64_t>(v); }

// The whole projection state a batch touches, applied in memory.
class BatchState {
 public:
  void NoteIds(const domain::DomainEvent& event) {
    std::visit(
        [&](const auto& e) {
          if constexpr (requires { e.order_id; }) {
            orders_.try_emplace(e.order_id.ToString());
            customers_.try_emplace(e.customer_id.ToString());
          } else if constexpr (requires { e.customer_id; }) {
            customers_.try_emplace(e.customer_id.ToString());
          } else {
            static_assert(requires { e.product_id; });
            products_.try_emplace(e.product_id.ToString());
          }
          if constexpr (requires { e.lines; }) {
            for (const auto& line : e.lines) products_.try_emplace(line.product_id.ToString());
          }
        },
        event.payload);
  }

  std::string OrderIds() const { return KeysArray(orders_); }
  std::string CustomerIds() const { return KeysArray(customers_); }
  std::string ProductIds() const { return KeysArray(products_); }
  bool HasOrders() const { return !orders_.empty(); }
  bool HasCustomers() const { return !customers_.empty(); }
  bool HasProducts() const { return !products_.empty(); }

  void LoadOrders(const pg::Result& r) {
    for (int i = 0; i < r.rows(); ++i) {
      auto& o = orders_[r.String(i, 0)];
      o.exists = true;
      o.customer_id = r.String(i, 1);
      o.customer_name = r.OptString(i, 2);
      o.customer_email = r.OptString(i, 3);
      o.status = r.String(i, 4);
      o.lines = r.String(i, 5);
      o.item_count = r.Int64(i, 6);
      o.total_cents = r.Int64(i, 7);
      o.placed_at = r.Int64(i, 8);
      o.paid_at = r.OptInt64(i, 9);
      o.shipped_at = r.OptInt64(i, 10);
      o.delivered_at = r.OptInt64(i, 11);
      o.cancelled_at = r.OptInt64(i, 12);
      o.payment_reference = r.OptString(i, 13);
      o.tracking_number = r.OptString(i, 14);
      o.cancel_reason = r.OptString(i, 15);
      o.version = r.Int64(i, 16);
      o.line_text = r.String(i, 17);
    }
  }
  void LoadCustomers(const pg::Result& r) {
    for (int i = 0; i < r.rows(); ++i) {
      auto& c = customers_[r.String(i, 0)];
      c.name = r.OptString(i, 1);
      c.email = r.OptString(i, 2);
      c.order_count = r.Int64(i, 3);
      c.lifetime_value_cents = r.Int64(i, 4);
      c.version = r.Int64(i, 5);
    }
  }
  void LoadProducts(const pg::Result& r) {
    for (int i = 0; i < r.rows(); ++i) {
      auto& p = products_[r.String(i, 0)];
      p.sku = r.OptString(i, 1);
      p.name = r.OptString(i, 2);
      p.price_cents = r.Int64(i, 3);
      p.stock = r.Int64(i, 4);
      p.units_sold = r.Int64(i, 5);
      p.revenue_cents = r.Int64(i, 6);
      p.version = r.Int64(i, 7);
    }
  }

  // Applies one event unless its aggregate already has it. Answers whether it was applied.
  bool Apply(const cqrs::StoredEvent& stored, const domain::DomainEvent& event) {
    const auto& id = stored.envelope.aggregate_id;
    std::int64_t* version = nullptr;
    if (stored.envelope.aggregate_type == "Customer") {
      version = &customers_.at(id).version;
    } else if (stored.envelope.aggregate_type == "Product") {
      version = &products_.at(id).version;
    } else if (stored.envelope.aggregate_type == "Order") {
      version = &orders_.at(id).version;
    } else {
      throw cqrs::FatalProjectionError("unknown aggregate type " + stored.envelope.aggregate_type);
    }
    const auto v = event.aggregate_version;
    if (v <= *version) return false;  // redelivered
    if (v != *version + 1) {
      throw cqrs::FatalProjectionError(fmt::format(
          "aggregate version gap: {} {} is at version {} but event {} (position {}) has "
          "version {}",
          stored.envelope.aggregate_type, id, *version, stored.envelope.type, stored.position, v));
    }
    std::visit([&](const auto& e) { On(e, event.occurred_at); }, event.payload);
    *version = v;
    return true;
  }

  void Finish() {
    // New and changed orders carry their customer's current details.
    for (auto& [id, o] : orders_) {
      if (!o.dirty) continue;
      auto it = customers_.find(o.customer_id);
      if (it != customers_.end() && it->second.version > 0) {
        o.customer_name = it->second.name;
        o.customer_email = it->second.email;
      }
    }
  }

  std::optional<std::string> OrdersJson() const {
    JsonOut out;
    out.BeginArray();
    for (const auto& [id, o] : orders_) {
      if (!o.dirty) continue;
      out.BeginObject();
      out.Field("id", id);
      out.Field("customer_id", o.customer_id);
      out.Field("customer_name", o.customer_name);
      out.Field("customer_email", o.customer_email);
      out.Field("status", o.status);
      out.RawField("lines", o.lines);
      out.Field("item_count", o.item_count);
      out.Field("total_cents", o.total_cents);
      out.Field("placed_at", o.placed_at);
      out.Field("paid_at", o.paid_at);
      out.Field("shipped_at", o.shipped_at);
      out.Field("delivered_at", o.delivered_at);
      out.Field("cancelled_at", o.cancelled_at);
      out.Field("payment_reference", o.payment_reference);
      out.Field("tracking_number", o.tracking_number);
      out.Field("cancel_reason", o.cancel_reason);
      out.Field("version", o.version);
      out.Field("line_text", o.line_text);
      out.EndObject();
    }
    if (out.Empty()) return std::nullopt;
    out.EndArray();
    return out.Take();
  }
  std::optional<std::string> CustomersJson() const {
    JsonOut out;
    out.BeginArray();
    for (const auto& [id, c] : customers_) {
      if (!c.dirty) continue;
      out.BeginObject();
      out.Field("id", id);
      out.Field("name", c.name);
      out.Field("email", c.email);
      out.Field("order_count", c.order_count);
      out.Field("lifetime_value_cents", c.lifetime_value_cents);
      out.Field("version", c.version);
      out.EndObject();
    }
    if (out.Empty()) return std::nullopt;
    out.EndArray();
    return out.Take();
  }
  std::optional<std::string> ProductsJson() const {
    JsonOut out;
    out.BeginArray();
    for (const auto& [id, p] : products_) {
      if (!p.dirty) continue;
      out.BeginObject();
      out.Field("id", id);
      out.Field("sku", p.sku);
      out.Field("name", p.name);
      out.Field("price_cents", p.price_cents);
      out.Field("stock", p.stock);
      out.Field("units_sold", p.units_sold);
      out.Field("revenue_cents", p.revenue_cents);
      out.Field("version", p.version);
      out.EndObject();
    }
    if (out.Empty()) return std::nullopt;
    out.EndArray();
    return out.Take();
  }
  std::optional<std::string> DailyJson() const {
    JsonOut out;
    out.BeginArray();
    for (const auto& [day, d] : days_) {
      out.BeginObject();
      out.Field("day", static_cast<std::int64_t>(day));
      out.Field("placed", d.placed);
      out.Field("paid", d.paid);
      out.Field("revenue", d.revenue);
      out.EndObject();
    }
    if (out.Empty()) return std::nullopt;
    out.EndArray();
    return out.Take();
  }
  std::optional<std::string> DirtyOrderIds() const {
    std::vector<std::string> ids;
    for (const auto& [id, o] : orders_) {
      if (o.dirty) ids.push_back(id);
    }
    if (ids.empty()) return std::nullopt;
    return UuidArray(ids);
  }
  std::optional<std::string> ChangedCustomers() const {
    std::vector<std::string> ids;
    for (const auto& [id, c] : customers_) {
      if (c.details_changed) ids.push_back(id);
    }
    if (ids.empty()) return std::nullopt;
    return UuidArray(ids);
  }

 private:
  template <class Map>
  static std::string KeysArray(const Map& map) {
    std::vector<std::string> ids;
    ids.reserve(map.size());
    for (const auto& [id, row] : map) ids.push_back(id);
    return UuidArray(ids);
  }

  CustomerRow& Customer(const domain::CustomerId& id) {
    auto& c = customers_.at(id.ToString());
    c.dirty = true;
    return c;
  }
  ProductRow& Product(const domain::ProductId& id) {
    auto& p = products_.at(id.ToString());
    p.dirty = true;
    return p;
  }
  OrderRow& Order(const domain::OrderId& id) {
    auto& o = orders_.at(id.ToString());
    o.dirty = true;
    return o;
  }

  void On(const domain::CustomerRegistered& e, domain::Timestamp) {
    auto& c = Customer(e.customer_id);
    c.name = e.name;
    c.email = e.email;
    c.details_changed = true;
  }
  void On(const domain::CustomerDetailsChanged& e, domain::Timestamp) {
    auto& c = Customer(e.customer_id);
    c.name = e.name;
    c.email = e.email;
    c.details_changed = true;
  }
  void On(const domain::ProductAdded& e, domain::Timestamp) {
    auto& p = Product(e.product_id);
    p.sku = e.sku;
    p.name = e.name;
    p.price_cents = e.price_cents;
    p.stock += e.stock;  // orders projected before this event may already have moved it
  }
  void On(const domain::ProductPriceChanged& e, domain::Timestamp) {
    Product(e.product_id).price_cents = e.new_price_cents;
  }
  void On(const domain::ProductRestocked& e, domain::Timestamp) {
    Product(e.product_id).stock += e.quantity;
  }
  void On(const domain::OrderPlaced& e, domain::Timestamp at) {
    auto& o = Order(e.order_id);
    o.exists = true;
    o.customer_id = e.customer_id.ToString();
    o.status = "placed";
    o.item_count = 0;
    o.line_text.clear();
    o.lines = "[";
    for (const auto& l : e.lines) {
      if (o.lines.size() > 1) o.lines.push_back(',');
      o.lines += "{\"product_id\":\"";
      o.lines += l.product_id.ToString();
      o.lines += "\",\"sku\":";
      JsonOut::AppendString(o.lines, l.sku);
      o.lines += ",\"product_name\":";
      JsonOut::AppendString(o.lines, l.product_name);
      fmt::format_to(std::back_inserter(o.lines),
                     ",\"quantity\":{},\"unit_price_cents\":{},\"line_total_cents\":{}}}",
                     l.quantity, l.unit_price_cents, l.line_total_cents());
      o.item_count += l.quantity;
      if (!o.line_text.empty()) o.line_text.push_back(' ');
      o.line_text += l.sku + ' ' + l.product_name;
      Product(l.product_id).stock -= l.quantity;
    }
    o.lines.push_back(']');
    o.total_cents = e.total_cents;
    o.placed_at = Ms(at);
    ++Customer(e.customer_id).order_count;
    ++days_[DayOf(at)].placed;
  }
  void On(const domain::OrderPaid& e, domain::Timestamp at) {
    auto& o = Order(e.order_id);
    o.status = "paid";
    o.paid_at = Ms(at);
    o.payment_reference = e.payment_reference;
    Customer(e.customer_id).lifetime_value_cents += o.total_cents;
    for (const auto& l : e.lines) {
      auto& p = Product(l.product_id);
      p.units_sold += l.quantity;
      p.revenue_cents += l.line_total_cents();
    }
    auto& day = days_[DayOf(at)];
    ++day.paid;
    day.revenue += e.amount_cents;
  }
  void On(const domain::OrderShipped& e, domain::Timestamp at) {
    auto& o = Order(e.order_id);
    o.status = "shipped";
    o.shipped_at = Ms(at);
    o.tracking_number = e.tracking_number;
  }
  void On(const domain::OrderDelivered& e, domain::Timestamp at) {
    auto& o = Order(e.order_id);
    o.status = "delivered";
    o.delivered_at = Ms(at);
  }
  void On(const domain::OrderCancelled& e, domain::Timestamp at) {
    auto& o = Order(e.order_id);
    const bool was_paid = e.previous_status == domain::OrderStatus::kPaid;
    o.status = "cancelled";
    o.cancelled_at = Ms(at);
    o.cancel_reason = e.reason.empty() ? std::nullopt : std::optional<std::string>(e.reason);
    auto& c = Customer(e.customer_id);
    --c.order_count;
    if (was_paid) c.lifetime_value_cents -= o.total_cents;
    for (const auto& l : e.lines) {
      auto& p = Product(l.product_id);
      p.stock += l.quantity;
      if (was_paid) {
        p.units_sold -= l.quantity;
        p.revenue_cents -= l.line_total_cents();
      }
    }
    if (e.refunded_cents > 0) days_[DayOf(at)].revenue -= e.refunded_cents;
  }

  std::unordered_map<std::string, CustomerRow> customers_;
  std::unordered_map<std::string, ProductRow> products_;
  std::unordered_map<std::string, OrderRow> orders_;
  std::map<int, DayDelta> days_;
};

cqrs::Checkpoint CheckpointFrom(const pg::Result& r) {
  if (r.rows() == 0) return {};
  return cqrs::Checkpoint{ToU64(r.Int64(0, 0)), r.Int64(0, 1), ToU64(r.Int64(0, 2))};
}

}  // namespace

PgReadProjection::PgReadProjection(std::string conninfo, std::string name)
    : conninfo_(std::move(conninfo)), name_(std::move(name)) {}

PgReadProjection::~PgReadProjection() = default;

pg::Connection& PgReadProjection::Connected() {
  if (connection_ && connection_->IsBroken()) connection_.reset();
  if (!connection_) {
    auto connection = std::make_unique<pg::Connection>(conninfo_);
    // synchronous_commit = off: a batch is visible to queries the moment it commits, without
    // waiting for the read server's WAL flush (several ms on an ordinary disk, which would be
    // the floor of the projection lag). Exactly-once is unaffected: the checkpoint commits in
    // the same transaction as the view changes it covers, so a read-server crash loses a
    // suffix of batches together with their checkpoint, and the projector re-applies them from
    // the outbox. Read-your-writes survives too: after a fault the projector reloads its
    // checkpoint and resets its ProgressTracker to it, so token waits wait for the re-apply.
    // work_mem: the set-based upserts read their rows from one function scan per table
    // (4MB spilled a 5,000-order batch to a temporary file).
    connection->Exec(
        "SET application_name = 'shopcqrs-projector'; SET TimeZone = 'UTC'; "
        "SET work_mem = '64MB'; SET synchronous_commit = off");
    connection->PrepareAll(queries::All());
    connection_ = std::move(connection);
  }
  return *connection_;
}

void PgReadProjection::Reset() { connection_.reset(); }

cqrs::Checkpoint PgReadProjection::LoadCheckpoint() {
  try {
    return CheckpointFrom(Connected().ExecPrepared(queries::kLoadCheckpoint, Params().Add(name_)));
  } catch (const pg::ConnectionLost&) {
    connection_.reset();
    throw;
  }
}

PgReadProjection::Timings PgReadProjection::GetTimings() const {
  std::lock_guard lock(timings_mutex_);
  return timings_;
}

namespace {

domain::DomainEvent Decode(const cqrs::StoredEvent& stored) {
  try {
    return events::FromEnvelope(stored.envelope);
  } catch (const std::exception& error) {
    throw cqrs::FatalProjectionError(fmt::format("cannot decode event {} at position {}: {}",
                                                 stored.envelope.event_id, stored.position,
                                                 error.what()));
  }
}

// Decodes the payloads (JSON parsing is most of the client-side work of a batch); large
// batches are split across two threads.
std::vector<domain::DomainEvent> DecodeAll(const std::vector<cqrs::StoredEvent>& events) {
  constexpr std::size_t kParallelFrom = 1000;
  std::vector<std::optional<domain::DomainEvent>> slots(events.size());
  auto decode = [&](std::size_t from, std::size_t to) {
    for (std::size_t i = from; i < to; ++i) slots[i].emplace(Decode(events[i]));
  };
  if (events.size() >= kParallelFrom && std::thread::hardware_concurrency() > 1) {
    const std::size_t half = events.size() / 2;
    std::exception_ptr failure;
    std::thread helper([&] {
      try {
        decode(half, events.size());
      } catch (...) {
        failure = std::current_exception();
      }
    });
    try {
      decode(0, half);
    } catch (...) {
      helper.join();
      throw;
    }
    helper.join();
    if (failure) std::rethrow_exception(failure);
  } else {
    decode(0, events.size());
  }
  std::vector<domain::DomainEvent> decoded;
  decoded.reserve(events.size());
  for (auto& slot : slots) decoded.push_back(std::move(*slot));
  return decoded;
}

}  // namespace

void PgReadProjection::Apply(const std::vector<cqrs::StoredEvent>& events,
                             const cqrs::Checkpoint& checkpoint) {
  using Clock = std::chrono::steady_clock;
  const auto t0 = Clock::now();
  const std::vector<domain::DomainEvent> decoded = DecodeAll(events);
  BatchState state;
  for (const auto& event : decoded) state.NoteIds(event);
  const auto t1 = Clock::now();
  Clock::time_point t2, t3, t4;

  auto& connection = Connected();
  try {
    pg::Connection::Pipeline load(connection);
    load.AddText("BEGIN");
    load.Add(queries::kEnsureCheckpoint, Params().Add(name_));
    load.Add(queries::kLockCheckpoint, Params().Add(name_));
    int orders_at = -1, customers_at = -1, products_at = -1;
    int next = 3;
    if (state.HasOrders()) {
      load.Add(queries::kLoadOrders, Params().Add(state.OrderIds()));
      orders_at = next++;
    }
    if (state.HasCustomers()) {
      load.Add(queries::kLoadCustomers, Params().Add(state.CustomerIds()));
      customers_at = next++;
    }
    if (state.HasProducts()) {
      load.Add(queries::kLoadProducts, Params().Add(state.ProductIds()));
      products_at = next++;
    }
    auto loaded = load.Run();
    if (orders_at >= 0) state.LoadOrders(loaded[orders_at]);
    if (customers_at >= 0) state.LoadCustomers(loaded[customers_at]);
    if (products_at >= 0) state.LoadProducts(loaded[products_at]);
    t2 = Clock::now();

    std::int64_t applied = 0;
    for (std::size_t i = 0; i < events.size(); ++i) {
      if (state.Apply(events[i], decoded[i])) ++applied;
    }
    state.Finish();
    t3 = Clock::now();

    pg::Connection::Pipeline write(connection);
    if (auto rows = state.OrdersJson()) write.Add(queries::kUpsertOrders, Params().Add(*rows));
    if (auto ids = state.DirtyOrderIds()) write.Add(queries::kSyncOrderSearch, Params().Add(*ids));
    if (auto rows = state.CustomersJson()) {
      write.Add(queries::kUpsertCustomers, Params().Add(*rows));
    }
    if (auto rows = state.ProductsJson()) {
      write.Add(queries::kUpsertProducts, Params().Add(*rows));
    }
    if (auto rows = state.DailyJson()) write.Add(queries::kAddDailySales, Params().Add(*rows));
    if (auto ids = state.ChangedCustomers()) {
      write.Add(queries::kPropagateCustomers, Params().Add(*ids));
      write.Add(queries::kSyncCustomerOrderSearch, Params().Add(*ids));
    }
    write.Add(queries::kStoreCheckpoint, Params()
                                             .Add(name_)
                                             .Add(static_cast<std::int64_t>(checkpoint.xid))
                                             .Add(checkpoint.position)
                                             .Add(static_cast<std::int64_t>(checkpoint.bound))
                                             .Add(applied));
    write.Add(queries::kNotifyProgress,
              Params().Add(fmt::format("{}:{}", name_, checkpoint.bound)));
    write.AddText("COMMIT");
    t4 = Clock::now();
    write.Run();
  } catch (...) {
    if (connection.IsBroken()) {
      connection_.reset();
    } else if (connection.InTransaction()) {
      try {
        connection.Exec("ROLLBACK");
      } catch (...) {
        connection_.reset();
      }
    }
    throw;
  }
  const auto t5 = Clock::now();
  auto seconds = [](Clock::duration d) { return std::chrono::duration<double>(d).count(); };
  std::lock_guard lock(timings_mutex_);
  ++timings_.batches;
  timings_.events += events.size();
  timings_.decode += seconds(t1 - t0);
  timings_.load += seconds(t2 - t1);
  timings_.apply += seconds(t3 - t2);
  timings_.encode += seconds(t4 - t3);
  timings_.write += seconds(t5 - t4);
}

// ---- ProgressListener ----

ProgressListener::ProgressListener(std::string conninfo, cqrs::ProgressTracker& tracker,
                                   std::string name, std::chrono::milliseconds poll_interval)
    : conninfo_(std::move(conninfo)),
      tracker_(tracker),
      name_(std::move(name)),
      poll_interval_(poll_interval) {
  thread_ = std::thread([this] { Run(); });
}

ProgressListener::~ProgressListener() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void ProgressListener::Run() {
  std::unique_ptr<pg::Connection> connection;
  const auto step = std::chrono::milliseconds(100);  // how soon a stop request is seen
  auto last_poll = std::chrono::steady_clock::time_point{};
  while (!stop_) {
    try {
      if (!connection || connection->IsBroken()) {
        connection.reset();
        connection = std::make_unique<pg::Connection>(conninfo_);
        connection->Exec(std::string("LISTEN ") + kProgressChannel);
        last_poll = {};
      }
      const auto now = std::chrono::steady_clock::now();
      if (now - last_poll >= poll_interval_) {
        auto rows = connection->Exec("SELECT bound FROM projection_checkpoints WHERE name = $1",
                                     Params().Add(name_));
        if (rows.rows() == 1) tracker_.Publish(ToU64(rows.Int64(0, 0)));
        last_poll = now;
      }
      PGconn* conn = connection->raw();
      pollfd fd{PQsocket(conn), POLLIN, 0};
      ::poll(&fd, 1, static_cast<int>(step.count()));
      if (PQconsumeInput(conn) != 1)
        throw pg::ConnectionLost("progress listener lost its connection");
      while (PGnotify* notify = PQnotifies(conn)) {
        std::string_view payload(notify->extra);
        const auto colon = payload.rfind(':');
        if (colon != std::string_view::npos && payload.substr(0, colon) == name_) {
          std::uint64_t bound = 0;
          const auto text = payload.substr(colon + 1);
          if (std::from_chars(text.data(), text.data() + text.size(), bound).ec == std::errc()) {
            tracker_.Publish(bound);
          }
        }
        PQfreemem(notify);
      }
    } catch (const std::exception& error) {
      spdlog::warn("progress listener: {}", error.what());
      connection.reset();
      for (int i = 0; i < 10 && !stop_; ++i) std::this_thread::sleep_for(step);
    }
  }
}

}  // namespace shopcqrs::adapters::pg_read
