// Black-box tests of every query and operations endpoint of the HTTP contract
// (/work/shared/API.md, "Queries" and "Operations"; our choices in docs/API.md), against the
// real `shopcqrs up` binary. Every read carries the consistency token of the last command
// (X-Consistency-Token, or the consistency_token query parameter), so the answers are
// deterministic although the read side is eventually consistent.
//
// Tests marked "CONTRACT BUG" document a deviation of the service from API.md; they are kept
// enabled and fail until the service is fixed.

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <boost/json.hpp>

#include "blackbox/service_fixture.h"

namespace shopcqrs::blackbox {
namespace {

namespace json = boost::json;

// RFC 3339 UTC with millisecond precision: YYYY-MM-DDTHH:MM:SS.mmmZ.
bool IsTimestampMs(const json::value& v) {
  if (!v.is_string()) return false;
  const std::string_view s = v.get_string();
  if (s.size() != 24) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    switch (i) {
      case 4:
      case 7:
        if (c != '-') return false;
        break;
      case 10:
        if (c != 'T') return false;
        break;
      case 13:
      case 16:
        if (c != ':') return false;
        break;
      case 19:
        if (c != '.') return false;
        break;
      case 23:
        if (c != 'Z') return false;
        break;
      default:
        if (c < '0' || c > '9') return false;
    }
  }
  return true;
}

bool IsInt(const json::value* v) { return v && (v->is_int64() || v->is_uint64()); }
std::int64_t AsInt(const json::value& v) {
  return v.is_int64() ? v.get_int64() : static_cast<std::int64_t>(v.get_uint64());
}

std::string Date(std::chrono::sys_days day) {
  const std::chrono::year_month_day ymd{day};
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02u", static_cast<int>(ymd.year()),
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()));
  return buf;
}
std::chrono::sys_days Today() {
  return std::chrono::floor<std::chrono::days>(std::chrono::system_clock::now());
}

std::set<std::string, std::less<>> Keys(const json::object& o) {
  std::set<std::string, std::less<>> keys;
  for (const auto& kv : o) keys.emplace(kv.key());
  return keys;
}

const std::set<std::string, std::less<>> kSummaryKeys = {
    "id",           "customer_id",  "customer_name",     "customer_email",  "status",
    "item_count",   "total_cents",  "placed_at",         "paid_at",         "shipped_at",
    "delivered_at", "cancelled_at", "payment_reference", "tracking_number", "cancel_reason",
    "version"};

class QueriesTest : public BlackboxTest {
 protected:
  // Records the token of a successful command and returns the response.
  ApiResponse Cmd(ApiResponse r) {
    const std::string token = r.Header("X-Consistency-Token");
    if (r.status >= 200 && r.status < 300 && !token.empty()) token_ = token;
    return r;
  }
  Customer NewCustomer(std::string name = "Query Customer") {
    Customer c{"", std::move(name), UniqueEmail("q")};
    const auto r = Cmd(api().Post("/v1/customers", CustomerBody(c.name, c.email)));
    EXPECT_EQ(r.status, 201) << r;
    c.id = r.Id();
    return c;
  }
  Product NewProduct(std::int64_t price, std::int64_t stock, std::string name = "Query Product",
                     std::string sku = {}) {
    Product p{"", sku.empty() ? UniqueSku("Q") : std::move(sku), std::move(name), price};
    const auto r = Cmd(api().Post("/v1/products", ProductBody(p.sku, p.name, price, stock)));
    EXPECT_EQ(r.status, 201) << r;
    p.id = r.Id();
    return p;
  }
  std::string Place(const std::string& customer_id, const std::vector<Line>& lines) {
    const auto r = Cmd(PlaceOrder(api(), customer_id, lines));
    EXPECT_EQ(r.status, 201) << "placing an order: " << r;
    return r.Id();
  }
  void Ok(ApiResponse r) {
    r = Cmd(std::move(r));
    EXPECT_EQ(r.status, 200) << r;
  }

  // A query that waits for the last command's token.
  ApiResponse Q(std::string_view target) {
    EXPECT_FALSE(token_.empty());
    return api().Get(target, {{"X-Consistency-Token", token_}});
  }
  // A query that must answer 200 with a JSON object.
  ApiResponse QOk(std::string_view target) {
    auto r = Q(target);
    EXPECT_EQ(r.status, 200) << "GET " << target << ": " << r;
    EXPECT_TRUE(r.Header("Content-Type").starts_with("application/json")) << r;
    return r;
  }

  // Follows next_cursor from `base` (which already has a '?') until it is null.
  std::vector<json::object> AllPages(const std::string& base, int limit, int* pages = nullptr) {
    std::vector<json::object> items;
    std::string cursor;
    for (int page = 0; page < 1000; ++page) {
      std::string target = base + "&limit=" + std::to_string(limit);
      if (!cursor.empty()) target += "&cursor=" + UrlEncode(cursor);
      const auto r = QOk(target);
      if (r.status != 200) break;
      const auto& arr = r.Object().at("items").as_array();
      EXPECT_LE(arr.size(), static_cast<std::size_t>(limit));
      for (const auto& item : arr) items.push_back(item.as_object());
      if (pages) ++*pages;
      const auto& next = r.Object().at("next_cursor");
      if (next.is_null()) return items;
      EXPECT_TRUE(next.is_string()) << r;
      cursor = std::string(next.as_string());
    }
    ADD_FAILURE() << "paging did not end";
    return items;
  }

  std::string token_;
};

std::vector<std::string> Ids(const std::vector<json::object>& items) {
  std::vector<std::string> ids;
  for (const auto& o : items) ids.emplace_back(o.at("id").as_string());
  return ids;
}

// placed_at never increases along the list.
::testing::AssertionResult NewestFirst(const std::vector<json::object>& items) {
  for (std::size_t i = 1; i < items.size(); ++i) {
    if (items[i - 1].at("placed_at").as_string() < items[i].at("placed_at").as_string()) {
      return ::testing::AssertionFailure()
             << "item " << i << " is newer than item " << i - 1 << ": "
             << json::serialize(items[i - 1]) << " / " << json::serialize(items[i]);
    }
  }
  return ::testing::AssertionSuccess();
}

// =============================================================================================
// GET /v1/orders/{id}
// =============================================================================================

using QueriesOrderViewTest = QueriesTest;

TEST_F(QueriesOrderViewTest, PlacedOrderHasEveryFieldWithNullsForWhatDoesNotApplyYet) {
  const auto customer = NewCustomer("View Customer");
  const auto p1 = NewProduct(250, 100, "View Widget");
  const auto p2 = NewProduct(1000, 100, "View Gadget");
  const std::string id = Place(customer.id, {{p1.id, 2}, {p2.id, 3}});
  ASSERT_FALSE(HasFailure());

  const auto r = QOk("/v1/orders/" + id);
  ASSERT_TRUE(HasExactKeys(
      r, {"id", "customer_id", "customer_name", "customer_email", "status", "lines", "item_count",
          "total_cents", "placed_at", "paid_at", "shipped_at", "delivered_at", "cancelled_at",
          "payment_reference", "tracking_number", "cancel_reason", "version"}));
  const auto& o = r.Object();
  EXPECT_EQ(r.Id(), id);
  EXPECT_EQ(r.Str("customer_id"), customer.id);
  EXPECT_EQ(r.Str("customer_name"), "View Customer");
  EXPECT_EQ(r.Str("customer_email"), customer.email);
  EXPECT_EQ(r.Str("status"), "placed");
  EXPECT_EQ(r.Int("item_count"), 5);
  EXPECT_EQ(r.Int("total_cents"), 2 * 250 + 3 * 1000);
  EXPECT_TRUE(IsTimestampMs(o.at("placed_at"))) << r;
  for (const char* key : {"paid_at", "shipped_at", "delivered_at", "cancelled_at",
                          "payment_reference", "tracking_number", "cancel_reason"}) {
    EXPECT_TRUE(o.at(key).is_null()) << key << ": " << r;
  }
  EXPECT_EQ(r.Int("version"), 1);

  const auto& lines = o.at("lines");
  ASSERT_TRUE(lines.is_array()) << r;
  ASSERT_EQ(lines.as_array().size(), 2u) << r;
  std::map<std::string, json::object> by_product;
  for (const auto& line : lines.as_array()) {
    ASSERT_TRUE(line.is_object());
    std::set<std::string, std::less<>> want = {
        "product_id", "sku", "product_name", "quantity", "unit_price_cents", "line_total_cents"};
    EXPECT_EQ(Keys(line.as_object()), want) << json::serialize(line);
    by_product[std::string(line.at("product_id").as_string())] = line.as_object();
  }
  ASSERT_EQ(by_product.count(p1.id), 1u) << r;
  ASSERT_EQ(by_product.count(p2.id), 1u) << r;
  const auto& l1 = by_product[p1.id];
  EXPECT_EQ(l1.at("sku").as_string(), p1.sku);
  EXPECT_EQ(l1.at("product_name").as_string(), "View Widget");
  EXPECT_EQ(AsInt(l1.at("quantity")), 2);
  EXPECT_EQ(AsInt(l1.at("unit_price_cents")), 250);
  EXPECT_EQ(AsInt(l1.at("line_total_cents")), 500);
  const auto& l2 = by_product[p2.id];
  EXPECT_EQ(l2.at("sku").as_string(), p2.sku);
  EXPECT_EQ(l2.at("product_name").as_string(), "View Gadget");
  EXPECT_EQ(AsInt(l2.at("quantity")), 3);
  EXPECT_EQ(AsInt(l2.at("unit_price_cents")), 1000);
  EXPECT_EQ(AsInt(l2.at("line_total_cents")), 3000);
}

TEST_F(QueriesOrderViewTest, LinesKeepCapturedPricesAndCustomerDetailsAreCurrent) {
  const auto customer = NewCustomer("Before Rename");
  const auto product = NewProduct(400, 50, "Captured Name");
  const std::string id = Place(customer.id, {{product.id, 2}});
  ASSERT_FALSE(HasFailure());

  Ok(SetPrice(api(), product.id, 999));
  const std::string new_email = UniqueEmail("renamed");
  Ok(api().Patch("/v1/customers/" + customer.id,
                 json::object{{"name", "After Rename"}, {"email", new_email}}));
  ASSERT_FALSE(HasFailure());

  const auto r = QOk("/v1/orders/" + id);
  EXPECT_EQ(r.Str("customer_name"), "After Rename") << r;
  EXPECT_EQ(r.Str("customer_email"), new_email) << r;
  EXPECT_EQ(r.Int("total_cents"), 800);
  EXPECT_EQ(r.Int("version"), 1) << "customer and product changes are not order changes";
  const auto& line = r.Object().at("lines").as_array().at(0).as_object();
  EXPECT_EQ(line.at("sku").as_string(), product.sku);
  EXPECT_EQ(line.at("product_name").as_string(), "Captured Name");
  EXPECT_EQ(AsInt(line.at("unit_price_cents")), 400);
  EXPECT_EQ(AsInt(line.at("line_total_cents")), 800);

  // The product view has the new price.
  const auto p = QOk("/v1/products/" + product.id);
  EXPECT_EQ(p.Int("price_cents"), 999) << p;
}

TEST_F(QueriesOrderViewTest, LifecycleFillsTimestampsAndDetails) {
  const auto customer = NewCustomer();
  const auto product = NewProduct(300, 10);
  const std::string id = Place(customer.id, {{product.id, 1}});
  ASSERT_FALSE(HasFailure());
  Ok(Pay(api(), id, 300, "PAYREF-view-1"));
  auto r = QOk("/v1/orders/" + id);
  EXPECT_EQ(r.Str("status"), "paid");
  EXPECT_TRUE(IsTimestampMs(r.Object().at("paid_at"))) << r;
  EXPECT_GE(r.Str("paid_at"), r.Str("placed_at"));
  EXPECT_EQ(r.Str("payment_reference"), "PAYREF-view-1");
  EXPECT_TRUE(r.Object().at("shipped_at").is_null()) << r;
  EXPECT_TRUE(r.Object().at("tracking_number").is_null()) << r;
  EXPECT_EQ(r.Int("version"), 2);

  Ok(Ship(api(), id, "TRK-view-1"));
  r = QOk("/v1/orders/" + id);
  EXPECT_EQ(r.Str("status"), "shipped");
  EXPECT_TRUE(IsTimestampMs(r.Object().at("shipped_at"))) << r;
  EXPECT_EQ(r.Str("tracking_number"), "TRK-view-1");
  EXPECT_TRUE(r.Object().at("delivered_at").is_null()) << r;
  EXPECT_EQ(r.Int("version"), 3);

  Ok(Deliver(api(), id));
  r = QOk("/v1/orders/" + id);
  EXPECT_EQ(r.Str("status"), "delivered");
  EXPECT_TRUE(IsTimestampMs(r.Object().at("delivered_at"))) << r;
  EXPECT_GE(r.Str("delivered_at"), r.Str("shipped_at"));
  EXPECT_GE(r.Str("shipped_at"), r.Str("paid_at"));
  EXPECT_TRUE(r.Object().at("cancelled_at").is_null()) << r;
  EXPECT_TRUE(r.Object().at("cancel_reason").is_null()) << r;
  EXPECT_EQ(r.Int("version"), 4);
}

TEST_F(QueriesOrderViewTest, CancelledOrderHasReasonOrNull) {
  const auto customer = NewCustomer();
  const auto product = NewProduct(300, 10);
  const std::string with_reason = Place(customer.id, {{product.id, 1}});
  const std::string without_reason = Place(customer.id, {{product.id, 1}});
  ASSERT_FALSE(HasFailure());
  Ok(Cancel(api(), with_reason, "changed my mind"));
  Ok(Cancel(api(), without_reason));

  auto r = QOk("/v1/orders/" + with_reason);
  EXPECT_EQ(r.Str("status"), "cancelled");
  EXPECT_TRUE(IsTimestampMs(r.Object().at("cancelled_at"))) << r;
  EXPECT_EQ(r.Str("cancel_reason"), "changed my mind");
  EXPECT_TRUE(r.Object().at("paid_at").is_null()) << r;
  EXPECT_EQ(r.Int("version"), 2);

  r = QOk("/v1/orders/" + without_reason);
  EXPECT_EQ(r.Str("status"), "cancelled");
  EXPECT_TRUE(IsTimestampMs(r.Object().at("cancelled_at"))) << r;
  EXPECT_TRUE(r.Object().at("cancel_reason").is_null()) << r;
}

TEST_F(QueriesOrderViewTest, UnknownAndNonUuidIdsAre404) {
  NewCustomer();  // a token to wait for
  EXPECT_TRUE(IsProblem(Q("/v1/orders/" + RandomUuid()), 404, "not_found"));
  EXPECT_TRUE(IsProblem(Q("/v1/orders/not-a-uuid"), 404, "not_found"));
  EXPECT_TRUE(IsProblem(Q("/v1/orders/12345"), 404, "not_found"));
  EXPECT_TRUE(IsProblem(Q("/v1/customers/not-a-uuid"), 404, "not_found"));
  EXPECT_TRUE(IsProblem(Q("/v1/customers/" + RandomUuid()), 404, "not_found"));
  EXPECT_TRUE(IsProblem(Q("/v1/products/not-a-uuid"), 404, "not_found"));
  EXPECT_TRUE(IsProblem(Q("/v1/products/" + RandomUuid()), 404, "not_found"));
}

// =============================================================================================
// GET /v1/orders
// =============================================================================================

using QueriesOrderListTest = QueriesTest;

TEST_F(QueriesOrderListTest, FiltersByCustomerAndStatusNewestFirstWithPaging) {
  const auto customer = NewCustomer();
  const auto other = NewCustomer();
  const auto product = NewProduct(100, 1000);
  std::vector<std::string> placed;
  for (int i = 0; i < 7; ++i) {
    placed.push_back(Place(customer.id, {{product.id, 1 + i}}));
    std::this_thread::sleep_for(std::chrono::milliseconds(3));  // distinct placed_at
  }
  Place(other.id, {{product.id, 1}});
  Ok(Pay(api(), placed[1], 200));
  Ok(Pay(api(), placed[4], 500));
  Ok(Cancel(api(), placed[2]));
  ASSERT_FALSE(HasFailure());

  int pages = 0;
  const auto all = AllPages("/v1/orders?customer_id=" + customer.id, 3, &pages);
  EXPECT_EQ(pages, 3);
  const std::vector<std::string> newest_first(placed.rbegin(), placed.rend());
  EXPECT_EQ(Ids(all), newest_first);
  EXPECT_TRUE(NewestFirst(all));
  for (const auto& item : all) {
    EXPECT_EQ(Keys(item), kSummaryKeys) << json::serialize(item);
    EXPECT_EQ(item.at("customer_id").as_string(), customer.id);
  }

  auto r = QOk("/v1/orders?customer_id=" + customer.id + "&status=paid");
  ASSERT_EQ(r.status, 200);
  std::vector<std::string> paid;
  for (const auto& item : r.Object().at("items").as_array()) {
    paid.emplace_back(item.at("id").as_string());
    EXPECT_EQ(item.at("status").as_string(), "paid");
  }
  EXPECT_EQ(paid, (std::vector<std::string>{placed[4], placed[1]}));
  EXPECT_TRUE(r.Object().at("next_cursor").is_null()) << r;

  r = QOk("/v1/orders?status=cancelled&customer_id=" + customer.id);
  ASSERT_EQ(r.status, 200);
  ASSERT_EQ(r.Object().at("items").as_array().size(), 1u) << r;
  EXPECT_EQ(r.Object().at("items").as_array()[0].at("id").as_string(), placed[2]);

  const auto placed_only = AllPages("/v1/orders?status=placed&customer_id=" + customer.id, 2);
  EXPECT_EQ(Ids(placed_only),
            (std::vector<std::string>{placed[6], placed[5], placed[3], placed[0]}));

  // Status filter alone: every item has that status, newest first.
  const auto any_paid = QOk("/v1/orders?status=paid&limit=50");
  ASSERT_EQ(any_paid.status, 200);
  std::vector<json::object> items;
  for (const auto& item : any_paid.Object().at("items").as_array()) {
    EXPECT_EQ(item.at("status").as_string(), "paid");
    items.push_back(item.as_object());
  }
  EXPECT_TRUE(NewestFirst(items));
  EXPECT_FALSE(items.empty());
}

TEST_F(QueriesOrderListTest, UnfilteredListIsNewestFirstAndDefaultsTo20) {
  const auto customer = NewCustomer();
  const auto product = NewProduct(100, 1000);
  std::string last;
  for (int i = 0; i < 21; ++i) last = Place(customer.id, {{product.id, 1}});
  ASSERT_FALSE(HasFailure());
  const auto r = QOk("/v1/orders");
  ASSERT_EQ(r.status, 200);
  ASSERT_TRUE(HasExactKeys(r, {"items", "next_cursor"}));
  const auto& arr = r.Object().at("items").as_array();
  EXPECT_EQ(arr.size(), 20u);
  EXPECT_TRUE(r.Object().at("next_cursor").is_string()) << r;
  std::vector<json::object> items;
  for (const auto& item : arr) items.push_back(item.as_object());
  EXPECT_TRUE(NewestFirst(items));
  ASSERT_FALSE(items.empty());
  EXPECT_EQ(items[0].at("placed_at").as_string(), QOk("/v1/orders/" + last).Str("placed_at"))
      << "the newest order (ours, placed last) comes first";
}

TEST_F(QueriesOrderListTest, PagingWhileOrdersAreInsertedNeverRepeatsOrSkips) {
  const auto customer = NewCustomer();
  const auto product = NewProduct(100, 100000);
  std::vector<std::string> existing;
  for (int i = 0; i < 30; ++i) existing.push_back(Place(customer.id, {{product.id, 1}}));
  ASSERT_FALSE(HasFailure());

  std::atomic<bool> stop{false};
  std::atomic<int> inserted{0};
  auto writer_api = NewApi();
  std::thread writer([&] {
    while (!stop.load()) {
      const auto r = PlaceOrder(*writer_api, customer.id, {{product.id, 1}});
      if (r.status == 201) inserted.fetch_add(1);
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  });

  // Every page waits for the token of the last setup command, sent as the query parameter.
  std::vector<std::string> seen;
  std::string cursor;
  int pages = 0;
  for (; pages < 200; ++pages) {
    std::string target =
        "/v1/orders?customer_id=" + customer.id + "&limit=4&consistency_token=" + UrlEncode(token_);
    if (!cursor.empty()) target += "&cursor=" + UrlEncode(cursor);
    const auto r = api().Get(target);
    ASSERT_EQ(r.status, 200) << target << ": " << r;
    for (const auto& item : r.Object().at("items").as_array()) {
      seen.emplace_back(item.at("id").as_string());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(15));  // let inserts happen
    const auto& next = r.Object().at("next_cursor");
    if (next.is_null()) break;
    cursor = std::string(next.as_string());
  }
  stop.store(true);
  writer.join();
  EXPECT_GT(inserted.load(), 0) << "the writer placed no order while paging";

  std::map<std::string, int> count;
  for (const auto& id : seen) ++count[id];
  for (const auto& [id, n] : count) EXPECT_EQ(n, 1) << "order " << id << " repeated";
  for (const auto& id : existing) EXPECT_EQ(count.count(id), 1u) << "order " << id << " skipped";
}

TEST_F(QueriesOrderListTest, BadParametersAreValidationFailed) {
  NewCustomer();
  EXPECT_TRUE(IsValidationError(Q("/v1/orders?limit=0"), "limit"));
  EXPECT_TRUE(IsValidationError(Q("/v1/orders?limit=101"), "limit"));
  EXPECT_TRUE(IsValidationError(Q("/v1/orders?limit=abc"), "limit"));
  EXPECT_TRUE(IsValidationError(Q("/v1/orders?limit=-1"), "limit"));
  EXPECT_TRUE(IsValidationError(Q("/v1/orders?limit="), "limit"));
  EXPECT_TRUE(IsValidationError(Q("/v1/orders?status=bogus"), "status"));
  EXPECT_TRUE(IsValidationError(Q("/v1/orders?status=PAID"), "status"));
  EXPECT_TRUE(IsValidationError(Q("/v1/orders?customer_id=not-a-uuid"), "customer_id"));
  EXPECT_TRUE(IsValidationError(Q("/v1/orders?cursor=garbage"), "cursor"));
  EXPECT_EQ(Q("/v1/orders?limit=1").status, 200);
  EXPECT_EQ(Q("/v1/orders?limit=100").status, 200);
  for (const char* status : {"placed", "paid", "shipped", "delivered", "cancelled"}) {
    EXPECT_EQ(Q(std::string("/v1/orders?limit=1&status=") + status).status, 200) << status;
  }
}

// =============================================================================================
// GET /v1/customers/{id}/orders
// =============================================================================================

using QueriesCustomerOrdersTest = QueriesTest;

TEST_F(QueriesCustomerOrdersTest, ListsOnlyThatCustomersOrdersNewestFirstWithPaging) {
  const auto customer = NewCustomer();
  const auto other = NewCustomer();
  const auto product = NewProduct(100, 1000);
  std::vector<std::string> placed;
  for (int i = 0; i < 22; ++i) {
    placed.push_back(Place(customer.id, {{product.id, 1}}));
    if (i % 5 == 0) Place(other.id, {{product.id, 1}});
  }
  ASSERT_FALSE(HasFailure());

  // Default limit 20.
  const auto first = QOk("/v1/customers/" + customer.id + "/orders");
  ASSERT_EQ(first.status, 200);
  ASSERT_TRUE(HasExactKeys(first, {"items", "next_cursor"}));
  EXPECT_EQ(first.Object().at("items").as_array().size(), 20u);
  EXPECT_TRUE(first.Object().at("next_cursor").is_string()) << first;

  int pages = 0;
  const auto all = AllPages("/v1/customers/" + customer.id + "/orders?x=1", 5, &pages);
  EXPECT_EQ(pages, 5);
  std::set<std::string> want(placed.begin(), placed.end());
  const auto ids = Ids(all);
  EXPECT_EQ(std::set<std::string>(ids.begin(), ids.end()), want);
  EXPECT_EQ(ids.size(), placed.size());
  EXPECT_TRUE(NewestFirst(all));
  for (const auto& item : all) {
    EXPECT_EQ(Keys(item), kSummaryKeys) << json::serialize(item);
    EXPECT_EQ(item.at("customer_id").as_string(), customer.id);
  }
  EXPECT_EQ(ids.front(), placed.back());
}

TEST_F(QueriesCustomerOrdersTest, UnknownCustomerIs404AndBadParamsAre400) {
  const auto customer = NewCustomer();
  EXPECT_TRUE(IsProblem(Q("/v1/customers/" + RandomUuid() + "/orders"), 404, "not_found"));
  EXPECT_TRUE(IsProblem(Q("/v1/customers/not-a-uuid/orders"), 404, "not_found"));
  // A known customer without orders: an empty list.
  const auto r = QOk("/v1/customers/" + customer.id + "/orders");
  EXPECT_TRUE(r.Object().at("items").as_array().empty()) << r;
  EXPECT_TRUE(r.Object().at("next_cursor").is_null()) << r;
  EXPECT_TRUE(IsValidationError(Q("/v1/customers/" + customer.id + "/orders?limit=0"), "limit"));
  EXPECT_TRUE(IsValidationError(Q("/v1/customers/" + customer.id + "/orders?limit=101"), "limit"));
  EXPECT_TRUE(
      IsValidationError(Q("/v1/customers/" + customer.id + "/orders?cursor=garbage"), "cursor"));
}

// =============================================================================================
// GET /v1/customers/{id}
// =============================================================================================

using QueriesCustomerViewTest = QueriesTest;

TEST_F(QueriesCustomerViewTest, OrderCountAndLifetimeValueFollowTheLifecycle) {
  const auto customer = NewCustomer("Lifetime Customer");
  const auto product = NewProduct(100, 1000);
  ASSERT_FALSE(HasFailure());

  auto view = [&](std::int64_t count, std::int64_t value, const char* step) {
    const auto r = QOk("/v1/customers/" + customer.id);
    EXPECT_EQ(r.Int("order_count"), count) << step << ": " << r;
    EXPECT_EQ(r.Int("lifetime_value_cents"), value) << step << ": " << r;
    return r;
  };

  const auto r0 = view(0, 0, "new customer");
  EXPECT_TRUE(
      HasExactKeys(r0, {"id", "name", "email", "order_count", "lifetime_value_cents", "version"}));
  EXPECT_EQ(r0.Id(), customer.id);
  EXPECT_EQ(r0.Str("name"), "Lifetime Customer");
  EXPECT_EQ(r0.Str("email"), customer.email);
  EXPECT_EQ(r0.Int("version"), 1);

  const std::string a = Place(customer.id, {{product.id, 1}});  // 100
  const std::string b = Place(customer.id, {{product.id, 2}});  // 200
  const std::string c = Place(customer.id, {{product.id, 3}});  // 300
  view(3, 0, "three placed");
  Ok(Pay(api(), a, 100));
  Ok(Pay(api(), b, 200));
  view(3, 300, "two paid");
  Ok(Cancel(api(), b, "refund"));
  view(2, 100, "paid order cancelled");
  Ok(Cancel(api(), c));
  view(1, 100, "placed order cancelled");
  Ok(Ship(api(), a));
  view(1, 100, "shipped");
  Ok(Deliver(api(), a));
  view(1, 100, "delivered");
  const std::string d = Place(customer.id, {{product.id, 4}});
  Ok(Pay(api(), d, 400));
  Ok(Ship(api(), d));
  view(2, 500, "second paid+shipped");

  const std::string email = UniqueEmail("lt");
  Ok(api().Patch("/v1/customers/" + customer.id, json::object{{"email", email}}));
  const auto r = view(2, 500, "after update");
  EXPECT_EQ(r.Str("email"), email);
  EXPECT_EQ(r.Str("name"), "Lifetime Customer");
  EXPECT_EQ(r.Int("version"), 2);
}

// =============================================================================================
// GET /v1/products/{id}
// =============================================================================================

using QueriesProductViewTest = QueriesTest;

TEST_F(QueriesProductViewTest, StockSalesRevenueAndPrice) {
  const auto product = NewProduct(500, 10, "Stocked Thing");
  const auto customer = NewCustomer();
  ASSERT_FALSE(HasFailure());

  auto view = [&](std::int64_t stock, std::int64_t sold, std::int64_t revenue, const char* step) {
    const auto r = QOk("/v1/products/" + product.id);
    EXPECT_EQ(r.Int("stock"), stock) << step << ": " << r;
    EXPECT_EQ(r.Int("units_sold"), sold) << step << ": " << r;
    EXPECT_EQ(r.Int("revenue_cents"), revenue) << step << ": " << r;
    return r;
  };

  const auto r0 = view(10, 0, 0, "new product");
  EXPECT_TRUE(HasExactKeys(
      r0, {"id", "sku", "name", "price_cents", "stock", "units_sold", "revenue_cents", "version"}));
  EXPECT_EQ(r0.Id(), product.id);
  EXPECT_EQ(r0.Str("sku"), product.sku);
  EXPECT_EQ(r0.Str("name"), "Stocked Thing");
  EXPECT_EQ(r0.Int("price_cents"), 500);
  EXPECT_EQ(r0.Int("version"), 1);

  const std::string o1 = Place(customer.id, {{product.id, 3}});
  view(7, 0, 0, "placed 3");
  Ok(Pay(api(), o1, 1500));
  view(7, 3, 1500, "paid 3");
  const std::string o2 = Place(customer.id, {{product.id, 2}});
  view(5, 3, 1500, "placed 2 more");
  Ok(Restock(api(), product.id, 5));
  view(10, 3, 1500, "restocked 5");
  Ok(Cancel(api(), o2));
  view(12, 3, 1500, "placed order cancelled");

  Ok(SetPrice(api(), product.id, 700));
  auto r = view(12, 3, 1500, "price changed");
  EXPECT_EQ(r.Int("price_cents"), 700);
  const std::string o3 = Place(customer.id, {{product.id, 1}});
  Ok(Pay(api(), o3, 700));
  Ok(Ship(api(), o3));
  view(11, 4, 2200, "paid and shipped at the new price");
  Ok(Deliver(api(), o3));
  view(11, 4, 2200, "delivered");
  Ok(Cancel(api(), o1));
  r = view(14, 1, 700, "paid order cancelled");
  // create, restock, price: 3 product changes; orders do not bump the product's version
  // unless the service counts reservations, so only check it is an integer >= 3.
  EXPECT_GE(r.Int("version").value_or(-1), 3) << r;
}

// =============================================================================================
// GET /v1/products/top
// =============================================================================================

using QueriesTopProductsTest = QueriesTest;

TEST_F(QueriesTopProductsTest, MostUnitsSoldFirstAndLimit) {
  const auto customer = NewCustomer();
  const auto big = NewProduct(1, 100000, "Top Big");
  const auto mid = NewProduct(1, 100000, "Top Mid");
  const auto unpaid = NewProduct(1, 100000, "Top Unpaid");
  ASSERT_FALSE(HasFailure());
  // 2 x 1000 + 977 units for `big`, 1000 + 953 for `mid`: far more than other tests sell.
  for (const auto& [product, quantities] :
       std::vector<std::pair<Product, std::vector<std::int64_t>>>{{big, {1000, 1000, 977}},
                                                                  {mid, {1000, 953}}}) {
    for (const auto q : quantities) {
      const std::string id = Place(customer.id, {{product.id, q}});
      Ok(Pay(api(), id, q));
    }
  }
  Place(customer.id, {{unpaid.id, 1000}});  // placed, not paid: no units sold
  ASSERT_FALSE(HasFailure());

  const auto r = QOk("/v1/products/top?limit=100");
  ASSERT_EQ(r.status, 200);
  ASSERT_TRUE(r.Object().at("items").is_array()) << r;
  const auto& items = r.Object().at("items").as_array();
  EXPECT_LE(items.size(), 100u);
  int big_at = -1, mid_at = -1;
  std::int64_t previous = INT64_MAX;
  for (std::size_t i = 0; i < items.size(); ++i) {
    const auto& item = items[i].as_object();
    const std::set<std::string, std::less<>> want = {"product_id", "sku", "name", "units_sold",
                                                     "revenue_cents"};
    EXPECT_EQ(Keys(item), want) << json::serialize(item);
    const std::int64_t sold = AsInt(item.at("units_sold"));
    EXPECT_LE(sold, previous) << "not sorted by units_sold at " << i << ": " << r;
    previous = sold;
    const std::string_view id = item.at("product_id").as_string();
    if (id == big.id) {
      big_at = static_cast<int>(i);
      EXPECT_EQ(item.at("sku").as_string(), big.sku);
      EXPECT_EQ(item.at("name").as_string(), "Top Big");
      EXPECT_EQ(sold, 2977);
      EXPECT_EQ(AsInt(item.at("revenue_cents")), 2977);
    }
    if (id == mid.id) {
      mid_at = static_cast<int>(i);
      EXPECT_EQ(sold, 1953);
      EXPECT_EQ(AsInt(item.at("revenue_cents")), 1953);
    }
    if (id == unpaid.id) {
      EXPECT_EQ(sold, 0) << "placed, unpaid lines are not sold";
    }
  }
  ASSERT_GE(big_at, 0) << r;
  ASSERT_GE(mid_at, 0) << r;
  EXPECT_LT(big_at, mid_at);

  const auto one = QOk("/v1/products/top?limit=1");
  ASSERT_EQ(one.status, 200);
  ASSERT_EQ(one.Object().at("items").as_array().size(), 1u) << one;
  EXPECT_GE(AsInt(one.Object().at("items").as_array()[0].at("units_sold")), 2977);

  const auto dflt = QOk("/v1/products/top");
  ASSERT_EQ(dflt.status, 200);
  EXPECT_LE(dflt.Object().at("items").as_array().size(), 20u);

  EXPECT_TRUE(IsValidationError(Q("/v1/products/top?limit=0"), "limit"));
  EXPECT_TRUE(IsValidationError(Q("/v1/products/top?limit=101"), "limit"));
  EXPECT_TRUE(IsValidationError(Q("/v1/products/top?limit=abc"), "limit"));
}

// =============================================================================================
// GET /v1/search/orders
// =============================================================================================

using QueriesSearchTest = QueriesTest;

TEST_F(QueriesSearchTest, MatchesCustomerProductAndTrackingWords) {
  const std::string name_word = UniqueWord("qw");
  const std::string product_word = UniqueWord("qw");
  const std::string sku = "SKU" + UniqueWord("qw");
  const std::string tracking = "TRK" + UniqueWord("qw");
  const auto customer = NewCustomer("Searcher " + name_word);
  const auto product = NewProduct(100, 100, "Gizmo " + product_word, sku);
  const auto plain = NewProduct(100, 100, "Plain");
  const std::string order = Place(customer.id, {{product.id, 1}, {plain.id, 1}});
  const std::string other = Place(customer.id, {{plain.id, 1}});
  Ok(Pay(api(), order, 200));
  Ok(Ship(api(), order, tracking));
  ASSERT_FALSE(HasFailure());

  // The ids found, sorted; with `top`, only the first `top` (in rank order) before sorting.
  auto search = [&](const std::string& q, std::size_t top = 100) {
    std::vector<std::string> ids;
    const auto r = QOk("/v1/search/orders?q=" + UrlEncode(q));
    if (r.status != 200) return ids;
    EXPECT_TRUE(HasExactKeys(r, {"items", "next_cursor"}));
    for (const auto& item : r.Object().at("items").as_array()) {
      EXPECT_EQ(Keys(item.as_object()), kSummaryKeys) << json::serialize(item);
      if (ids.size() < top) ids.emplace_back(item.at("id").as_string());
    }
    std::sort(ids.begin(), ids.end());
    return ids;
  };
  std::vector<std::string> both = {order, other};
  std::sort(both.begin(), both.end());
  const std::vector<std::string> just = {order};

  EXPECT_EQ(search(name_word), both) << "customer name";
  // Other customers' e-mails one character away match fuzzily, ranked below the exact ones.
  EXPECT_EQ(search(customer.email, both.size()), both) << "customer email";
  EXPECT_EQ(search(product_word), just) << "product name";
  EXPECT_EQ(search(sku), just) << "sku";
  EXPECT_EQ(search(tracking), just) << "tracking number";
  // Case-insensitive; every word must match.
  std::string upper = product_word;
  for (auto& ch : upper) ch = static_cast<char>(ch - 'a' + 'A');
  EXPECT_EQ(search(upper), just) << "upper-case product word";
  EXPECT_EQ(search(name_word + " " + product_word), just) << "two words";
  EXPECT_TRUE(search(name_word + " " + UniqueWord("qw")).empty()) << "one word matching nothing";
  EXPECT_TRUE(search(UniqueWord("qw")).empty());

  // Customer updates reach search.
  const std::string renamed = UniqueWord("qw");
  Ok(api().Patch("/v1/customers/" + customer.id, json::object{{"name", "Renamed " + renamed}}));
  EXPECT_EQ(search(renamed), both) << "new customer name";
  EXPECT_TRUE(search(name_word).empty()) << "old customer name";

  // Limit.
  const auto limited = QOk("/v1/search/orders?limit=1&q=" + UrlEncode(renamed));
  EXPECT_EQ(limited.Object().at("items").as_array().size(), 1u) << limited;
}

TEST_F(QueriesSearchTest, RankedTypoTolerantFilteredAndPaged) {
  const std::string word = UniqueWord("qw");  // letters only, 20+ of them
  std::string typo = word;                    // one wrong letter
  typo[6] = typo[6] == 'z' ? 'y' : 'z';
  const auto customer = NewCustomer("Ranker " + UniqueWord("qw"));
  const auto exact = NewProduct(100, 100, "Thing " + word);
  const auto prefix = NewProduct(100, 100, "Thing " + word + "ly");
  const auto fuzzy = NewProduct(100, 100, "Thing " + typo);
  // Oldest first in the order of relevance: newest first alone would reverse it.
  const std::string o_exact = Place(customer.id, {{exact.id, 1}});
  const std::string o_prefix = Place(customer.id, {{prefix.id, 1}});
  const std::string o_fuzzy = Place(customer.id, {{fuzzy.id, 1}});
  Ok(Pay(api(), o_prefix, 100));
  ASSERT_FALSE(HasFailure());

  auto ids = [&](const std::string& params) {
    std::vector<std::string> out;
    const auto r = QOk("/v1/search/orders?" + params);
    if (r.status != 200) return out;
    for (const auto& item : r.Object().at("items").as_array()) {
      out.emplace_back(item.at("id").as_string());
    }
    return out;
  };
  const std::vector<std::string> ranked = {o_exact, o_prefix, o_fuzzy};
  EXPECT_EQ(ids("q=" + word), ranked) << "exact, then prefix, then one typo";
  std::string missing = word;  // one missing letter, in the middle
  missing.erase(8, 1);
  EXPECT_EQ(ids("q=" + missing), std::vector<std::string>{o_exact}) << "one missing letter";
  EXPECT_EQ(ids("q=" + word + "&status=paid"), std::vector<std::string>{o_prefix});
  EXPECT_EQ(ids("q=" + word + "&from=2000-01-01&to=2000-12-31"), std::vector<std::string>{});
  EXPECT_EQ(ids("q=" + word + "&from=2000-01-01"), ranked);

  // Paging with the cursor, one item a page: the same items in the same order.
  std::vector<std::string> paged;
  std::string cursor;
  for (int page = 0; page < 5; ++page) {
    const auto r = QOk("/v1/search/orders?limit=1&q=" + word +
                       (cursor.empty() ? "" : "&cursor=" + UrlEncode(cursor)));
    ASSERT_EQ(r.status, 200) << r;
    for (const auto& item : r.Object().at("items").as_array()) {
      paged.emplace_back(item.at("id").as_string());
    }
    const auto& next = r.Object().at("next_cursor");
    if (next.is_null()) break;
    cursor = std::string(next.as_string());
  }
  EXPECT_EQ(paged, ranked);

  EXPECT_TRUE(IsValidationError(Q("/v1/search/orders?q=" + word + "&status=lost"), "status"));
  EXPECT_TRUE(IsValidationError(Q("/v1/search/orders?q=" + word + "&from=2026-13-01"), "from"));
  EXPECT_TRUE(
      IsValidationError(Q("/v1/search/orders?q=" + word + "&from=2026-02-02&to=2026-02-01"), "to"));
  EXPECT_TRUE(IsValidationError(Q("/v1/search/orders?q=" + word + "&cursor=nonsense"), "cursor"));
}

TEST_F(QueriesSearchTest, MissingOrBadQueryIs400) {
  NewCustomer();
  EXPECT_TRUE(IsValidationError(Q("/v1/search/orders"), "q"));
  EXPECT_TRUE(IsValidationError(Q("/v1/search/orders?q="), "q"));
  EXPECT_TRUE(IsValidationError(Q("/v1/search/orders?q=" + std::string(201, 'a')), "q"));
  EXPECT_TRUE(IsValidationError(Q("/v1/search/orders?q=abc&limit=0"), "limit"));
  EXPECT_TRUE(IsValidationError(Q("/v1/search/orders?q=abc&limit=101"), "limit"));
}

// =============================================================================================
// GET /v1/stats/daily-sales
// =============================================================================================

using QueriesDailySalesTest = QueriesTest;

TEST_F(QueriesDailySalesTest, TodayCountsOrdersPaymentsAndRefunds) {
  const auto customer = NewCustomer();
  const auto product = NewProduct(1234, 100);
  ASSERT_FALSE(HasFailure());
  const std::string today = Date(Today());
  const std::string target = "/v1/stats/daily-sales?from=" + today + "&to=" + today;

  auto snapshot = [&] {
    const auto r = QOk(target);
    std::array<std::int64_t, 3> out{-1, -1, -1};
    if (r.status != 200) return out;
    EXPECT_TRUE(HasExactKeys(r, {"items"}));
    const auto& items = r.Object().at("items").as_array();
    EXPECT_EQ(items.size(), 1u) << r;
    if (items.empty()) return out;
    const auto& item = items[0].as_object();
    const std::set<std::string, std::less<>> want = {"date", "orders_placed", "orders_paid",
                                                     "revenue_cents"};
    EXPECT_EQ(Keys(item), want) << r;
    EXPECT_EQ(item.at("date").as_string(), today);
    out = {AsInt(item.at("orders_placed")), AsInt(item.at("orders_paid")),
           AsInt(item.at("revenue_cents"))};
    return out;
  };

  const auto before = snapshot();
  const std::string a = Place(customer.id, {{product.id, 1}});
  const std::string b = Place(customer.id, {{product.id, 2}});
  const std::string c = Place(customer.id, {{product.id, 3}});
  Ok(Pay(api(), a, 1234));
  Ok(Pay(api(), b, 2468));
  Ok(Cancel(api(), b));  // refund 2468 today
  Ok(Cancel(api(), c));  // never paid: no refund
  ASSERT_FALSE(HasFailure());
  const auto after = snapshot();
  EXPECT_EQ(after[0] - before[0], 3) << "orders_placed";
  EXPECT_EQ(after[1] - before[1], 2) << "orders_paid";
  EXPECT_EQ(after[2] - before[2], 1234) << "revenue_cents (payments minus refunds)";
}

TEST_F(QueriesDailySalesTest, OneItemPerDayInRange) {
  NewCustomer();
  const auto today = Today();
  const auto from = today - std::chrono::days(6);
  const auto r = QOk("/v1/stats/daily-sales?from=" + Date(from) + "&to=" + Date(today));
  ASSERT_EQ(r.status, 200);
  const auto& items = r.Object().at("items").as_array();
  std::set<std::string> dates;
  for (const auto& item : items) dates.emplace(item.at("date").as_string());
  std::set<std::string> want;
  for (auto d = from; d <= today; d += std::chrono::days(1)) want.insert(Date(d));
  EXPECT_EQ(items.size(), 7u) << r;
  EXPECT_EQ(dates, want) << r;

  // Days long ago are listed with zeros; 366 days (a leap year) is the maximum.
  const auto year = QOk("/v1/stats/daily-sales?from=2000-01-01&to=2000-12-31");
  ASSERT_EQ(year.status, 200);
  const auto& days = year.Object().at("items").as_array();
  EXPECT_EQ(days.size(), 366u);
  for (const auto& item : days) {
    EXPECT_EQ(AsInt(item.at("orders_placed")), 0);
    EXPECT_EQ(AsInt(item.at("orders_paid")), 0);
    EXPECT_EQ(AsInt(item.at("revenue_cents")), 0);
  }
  const auto one = QOk("/v1/stats/daily-sales?from=2000-02-29&to=2000-02-29");
  EXPECT_EQ(one.Object().at("items").as_array().size(), 1u) << one;
}

TEST_F(QueriesDailySalesTest, BadRangesAre400) {
  NewCustomer();
  const std::string base = "/v1/stats/daily-sales";
  EXPECT_TRUE(IsValidationError(Q(base + "?from=2026-03-02&to=2026-03-01")));
  EXPECT_TRUE(IsValidationError(Q(base + "?from=2000-01-01&to=2001-01-01")));  // 367 days
  EXPECT_TRUE(IsValidationError(Q(base + "?from=2020-01-01&to=2026-01-01")));
  EXPECT_TRUE(IsValidationError(Q(base + "?from=2026-02-30&to=2026-03-01"), "from"));
  EXPECT_TRUE(IsValidationError(Q(base + "?from=2026-02-01&to=2026-02-30"), "to"));
  EXPECT_TRUE(IsValidationError(Q(base + "?from=2025-02-29&to=2025-03-01"), "from"));
  EXPECT_TRUE(IsValidationError(Q(base + "?from=2026-1-5&to=2026-01-06"), "from"));
  EXPECT_TRUE(IsValidationError(Q(base + "?from=2026-13-01&to=2026-12-31"), "from"));
  EXPECT_TRUE(IsValidationError(Q(base + "?from=abc&to=2026-01-06"), "from"));
  EXPECT_TRUE(IsValidationError(Q(base + "?to=2026-01-06"), "from"));
  EXPECT_TRUE(IsValidationError(Q(base + "?from=2026-01-06"), "to"));
  EXPECT_TRUE(IsValidationError(Q(base)));
}

// =============================================================================================
// Consistency tokens
// =============================================================================================

using QueriesConsistencyTest = QueriesTest;

TEST_F(QueriesConsistencyTest, TokenSentAsHeaderOrQueryParameterMakesTheWriteVisible) {
  const auto customer = NewCustomer("Token Reader");
  ASSERT_FALSE(HasFailure());
  // Header.
  const auto a = api().Get("/v1/customers/" + customer.id, {{"X-Consistency-Token", token_}});
  EXPECT_EQ(a.status, 200) << a;
  EXPECT_EQ(a.Str("name"), "Token Reader");
  // Query parameter, on a write that was just made.
  Ok(api().Patch("/v1/customers/" + customer.id, json::object{{"name", "Token Reader 2"}}));
  const auto b =
      api().Get("/v1/customers/" + customer.id + "?consistency_token=" + UrlEncode(token_));
  EXPECT_EQ(b.status, 200) << b;
  EXPECT_EQ(b.Str("name"), "Token Reader 2") << b;
  // An already-applied token answers at once even with no wait allowed.
  const auto c = api().Get("/v1/customers/" + customer.id,
                           {{"X-Consistency-Token", token_}, {"X-Consistency-Wait-Ms", "0"}});
  EXPECT_EQ(c.status, 200) << c;
  const auto d = api().Get("/v1/customers/" + customer.id,
                           {{"X-Consistency-Token", token_}, {"X-Consistency-Wait-Ms", "10000"}});
  EXPECT_EQ(d.status, 200) << d;
  // An older token is applied too.
  const auto e = api().Get("/v1/orders?limit=1", {{"X-Consistency-Token", token_}});
  EXPECT_EQ(e.status, 200) << e;
}

TEST_F(QueriesConsistencyTest, TokensNotIssuedByTheServerAre400) {
  NewCustomer();
  ASSERT_FALSE(token_.empty());
  std::string tampered = token_;
  tampered.back() = tampered.back() == '0' ? '1' : '0';
  for (const std::string& bad :
       {std::string("ct1.5.00000000"), std::string("ct2.x.1.5.00000000000000000000000000000000"),
        std::string("garbage"), std::string("ct1..x"), tampered}) {
    EXPECT_TRUE(IsValidationError(api().Get("/v1/orders", {{"X-Consistency-Token", bad}})))
        << "header token " << bad;
    EXPECT_TRUE(IsValidationError(api().Get("/v1/orders?consistency_token=" + UrlEncode(bad))))
        << "query token " << bad;
  }
  EXPECT_TRUE(IsValidationError(
      api().Get("/v1/customers/" + RandomUuid(), {{"X-Consistency-Token", "garbage"}})));
}

TEST_F(QueriesConsistencyTest, WaitMsOutOfRangeIs400) {
  NewCustomer();
  for (const char* wait : {"-1", "10001", "abc", "", "1.5"}) {
    const auto r = api().Get("/v1/orders?limit=1",
                             {{"X-Consistency-Token", token_}, {"X-Consistency-Wait-Ms", wait}});
    EXPECT_TRUE(IsValidationError(r)) << "X-Consistency-Wait-Ms: '" << wait << "'";
  }
}

// =============================================================================================
// Operations
// =============================================================================================

using QueriesOperationsTest = QueriesTest;

TEST_F(QueriesOperationsTest, HealthAndReadiness) {
  const auto health = api().Get("/healthz");
  EXPECT_EQ(health.status, 200) << health;
  EXPECT_TRUE(HasExactKeys(health, {"status"}));
  EXPECT_EQ(health.Str("status"), "ok");

  const auto ready = api().Get("/readyz");
  ASSERT_EQ(ready.status, 200) << ready;
  EXPECT_EQ(ready.Str("status"), "ready") << ready;
  const auto* checks = ready.Object().if_contains("checks");
  ASSERT_TRUE(checks && checks->is_object()) << ready;
  // docs/API.md names write_db, read_db and projector; the service reports one check per store,
  // broker and projector (e.g. redis, projector_read_pg). The contract needs every configured
  // store to answer: each check present is "up", and the two databases are among them.
  ASSERT_FALSE(checks->as_object().empty()) << ready;
  for (const char* key : {"write_db", "read_db"}) {
    EXPECT_TRUE(checks->as_object().contains(key)) << key << ": " << ready;
  }
  for (const auto& kv : checks->as_object()) {
    EXPECT_TRUE(kv.value().is_string() && kv.value().as_string() == "up")
        << kv.key() << ": " << ready;
  }
}

TEST_F(QueriesOperationsTest, MetricsHaveTheContractSeries) {
  // A command and a query so every series has samples.
  const auto customer = NewCustomer();
  QOk("/v1/customers/" + customer.id);
  const auto r = api().Get("/metrics");
  ASSERT_EQ(r.status, 200);
  EXPECT_TRUE(r.Header("Content-Type").starts_with("text/plain")) << r.Header("Content-Type");
  for (const char* series :
       {"shopcqrs_commands_total{", "shopcqrs_command_duration_seconds_bucket{",
        "shopcqrs_command_duration_seconds_sum", "shopcqrs_command_duration_seconds_count",
        "shopcqrs_queries_total{", "shopcqrs_projection_lag_seconds_bucket{",
        "shopcqrs_projection_position{", "shopcqrs_events_total",
        "# TYPE shopcqrs_command_duration_seconds histogram",
        "# TYPE shopcqrs_projection_lag_seconds histogram"}) {
    EXPECT_NE(r.body.find(series), std::string::npos) << "missing " << series;
  }
  // Labels named by the contract.
  for (const char* label : {"command=", "outcome=", "query=", "projection=", "le="}) {
    EXPECT_NE(r.body.find(label), std::string::npos) << "missing label " << label;
  }
}

TEST_F(QueriesOperationsTest, AdminProjectionsListsEveryProjection) {
  NewCustomer();
  const auto r = QOk("/v1/admin/projections");
  ASSERT_EQ(r.status, 200);
  ASSERT_TRUE(r.Object().contains("items") && r.Object().at("items").is_array()) << r;
  const auto& items = r.Object().at("items").as_array();
  ASSERT_FALSE(items.empty()) << r;
  for (const auto& v : items) {
    ASSERT_TRUE(v.is_object());
    const auto& item = v.as_object();
    for (const char* key : {"name", "store", "status"}) {
      const auto* f = item.if_contains(key);
      EXPECT_TRUE(f && f->is_string() && !f->as_string().empty()) << key << ": " << r;
    }
    for (const char* key : {"position", "events_behind", "lag_ms", "dead_letters"}) {
      const auto* f = item.if_contains(key);
      EXPECT_TRUE(IsInt(f) && AsInt(*f) >= 0) << key << ": " << r;
    }
    const auto* dead = item.if_contains("dead_letters");
    if (IsInt(dead)) {
      EXPECT_EQ(AsInt(*dead), 0);
    }
    const auto* err = item.if_contains("last_error");
    EXPECT_TRUE(err && err->is_null()) << "last_error: " << r;
  }
}

}  // namespace
}  // namespace shopcqrs::blackbox
