#include "adapters/http/query_routes.h"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

#include <chrono>
#include <thread>

#include "infra/http/router.h"
#include "infra/metrics/registry.h"
#include "support/empty_read_model.h"

namespace shopcqrs::adapters::http {
namespace {

using namespace infra::http;

using namespace std::chrono_literals;

using test_support::EmptyReadModel;

class QueryRoutesTest : public ::testing::Test {
 protected:
  Response Get(std::string target, std::uint64_t bound, std::string wait_ms = "50") {
    Request request;
    request.method = "GET";
    request.SetTarget(std::move(target));
    request.headers = {{"X-Consistency-Token", tokens_.Encode(bound)},
                       {"X-Consistency-Wait-Ms", wait_ms}};
    request.request_id = "test";
    return router_.Dispatch(request);
  }

  EmptyReadModel model_;
  cqrs::ConsistencyTokens tokens_;
  infra::metrics::Registry registry_;
  cqrs::ProgressTracker read_pg_;
  cqrs::ProgressTracker search_;
  Router router_;
};

TEST_F(QueryRoutesTest, SearchWaitsForTheSearchProjectionAndReadPg) {
  RegisterQueryRoutes(router_, model_, tokens_, read_pg_, registry_, nullptr, {}, &search_);
  read_pg_.Publish(10);
  // The read store has the token, the search projection does not: behind.
  Response r = Get("/v1/search/orders?q=ann", 10);
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_EQ(boost::json::parse(r.body).at("code").as_string(), "read_model_behind");
  EXPECT_EQ(model_.searches, 0);
  // Other queries do not wait for search.
  EXPECT_EQ(Get("/v1/orders", 10).status, 200);

  search_.Publish(12);
  EXPECT_EQ(Get("/v1/search/orders?q=ann", 10).status, 200);
  EXPECT_EQ(model_.searches, 1);
  // The search projection ahead, read_pg behind: still behind.
  EXPECT_EQ(Get("/v1/search/orders?q=ann", 11).status, 503);
  // Woken while waiting.
  std::thread later([&] {
    std::this_thread::sleep_for(10ms);
    read_pg_.Publish(11);
  });
  EXPECT_EQ(Get("/v1/search/orders?q=ann", 11, "5000").status, 200);
  later.join();
}

TEST_F(QueryRoutesTest, WithoutASearchTrackerSearchWaitsForReadPgOnly) {
  RegisterQueryRoutes(router_, model_, tokens_, read_pg_, registry_);
  read_pg_.Publish(10);
  EXPECT_EQ(Get("/v1/search/orders?q=ann", 10).status, 200);
  EXPECT_EQ(Get("/v1/search/orders?q=ann", 11).status, 503);
}

TEST_F(QueryRoutesTest, SearchParsesFiltersAndCursor) {
  RegisterQueryRoutes(router_, model_, tokens_, read_pg_, registry_);
  read_pg_.Publish(10);
  auto r =
      Get("/v1/search/orders?q=ann%20widget&limit=5&status=paid&from=2026-01-02&to=2026-02-03"
          "&cursor=abc",
          10);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(boost::json::parse(r.body).as_object().at("next_cursor"), nullptr);
  ASSERT_TRUE(model_.last_search);
  const auto& q = *model_.last_search;
  EXPECT_EQ(q.q, "ann widget");
  EXPECT_EQ(q.limit, 5);
  EXPECT_EQ(q.status, "paid");
  using std::chrono::sys_days;
  using namespace std::chrono;
  EXPECT_EQ(q.from, sys_days(year(2026) / 1 / 2));
  EXPECT_EQ(q.to, sys_days(year(2026) / 2 / 3));
  EXPECT_EQ(q.cursor, "abc");
  // Without the optional parameters: none of them.
  ASSERT_EQ(Get("/v1/search/orders?q=ann", 10).status, 200);
  EXPECT_FALSE(model_.last_search->status || model_.last_search->from || model_.last_search->to ||
               model_.last_search->cursor);
  EXPECT_EQ(model_.last_search->limit, 20);
}

TEST_F(QueryRoutesTest, SearchRejectsBadFilters) {
  RegisterQueryRoutes(router_, model_, tokens_, read_pg_, registry_);
  read_pg_.Publish(10);
  for (const char* query : {"q=ann&status=lost", "q=ann&from=2026-13-01", "q=ann&to=yesterday",
                            "q=ann&from=2026-02-02&to=2026-02-01", "q=ann&limit=0",
                            "q=ann&limit=101", "q=", "status=paid"}) {
    auto r = Get(std::string("/v1/search/orders?") + query, 10);
    EXPECT_EQ(r.status, 400) << query;
    EXPECT_NE(r.body.find("validation_failed"), std::string::npos) << query << ": " << r.body;
  }
  EXPECT_EQ(model_.searches, 0);
}

}  // namespace
}  // namespace shopcqrs::adapters::http
