#include "adapters/http/ops_routes.h"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

namespace shopcqrs::adapters::http {
namespace {

using namespace infra::http;

namespace json = boost::json;

Response Get(Router& router, std::string target) {
  Request request;
  request.method = "GET";
  request.SetTarget(std::move(target));
  return router.Dispatch(request);
}

TEST(OpsRoutesTest, Healthz) {
  Router router;
  infra::metrics::Registry registry;
  RegisterOpsRoutes(router, registry, {});
  const Response r = Get(router, "/healthz");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "application/json");
  EXPECT_EQ(json::parse(r.body), json::parse(R"({"status":"ok"})"));
}

TEST(OpsRoutesTest, ReadyWhenEveryCheckPasses) {
  Router router;
  infra::metrics::Registry registry;
  RegisterOpsRoutes(router, registry,
                    {{"write_db", [] { return true; }}, {"read_db", [] { return true; }}});
  const Response r = Get(router, "/readyz");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(
      json::parse(r.body),
      json::parse(R"({"status":"ready","checks":{"write_db":"up","read_db":"up"},"auth":"on"})"));
}

TEST(OpsRoutesTest, ReadyzReportsAuthenticationOff) {
  Router router;
  infra::metrics::Registry registry;
  RegisterOpsRoutes(router, registry, {}, /*auth_on=*/false);
  EXPECT_EQ(json::parse(Get(router, "/readyz").body).at("auth"), "off");
}

TEST(OpsRoutesTest, NotReadyNamesWhatIsDown) {
  Router router;
  infra::metrics::Registry registry;
  bool broker_up = false;
  RegisterOpsRoutes(router, registry,
                    {{"write_db", [] { return true; }},
                     {"redis", []() -> bool { throw std::runtime_error("refused"); }},
                     {"broker", [&] { return broker_up; }}});
  Response r = Get(router, "/readyz");
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.content_type, "application/problem+json");
  EXPECT_EQ(r.Header("Retry-After"), "1");
  const json::value body = json::parse(r.body);
  EXPECT_EQ(body.at("code"), "service_unavailable");
  EXPECT_EQ(body.at("status"), 503);
  EXPECT_EQ(body.at("detail"), "not ready: redis, broker down");
  EXPECT_EQ(body.at("checks").at("write_db"), "up");
  EXPECT_EQ(body.at("checks").at("redis"), "down");
  EXPECT_EQ(body.at("checks").at("broker"), "down");
  EXPECT_EQ(body.as_object().find("refused"), body.as_object().end());
  broker_up = true;
  r = Get(router, "/readyz");
  EXPECT_EQ(json::parse(r.body).at("detail"), "not ready: redis down");
}

TEST(OpsRoutesTest, MetricsInPrometheusFormat) {
  Router router;
  infra::metrics::Registry registry;
  registry.AddCounter("shopcqrs_events_total", "Events.").Get().Inc(3);
  RegisterOpsRoutes(router, registry, {});
  const Response r = Get(router, "/metrics");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(r.body, registry.Render());
  EXPECT_NE(r.body.find("shopcqrs_events_total 3\n"), std::string::npos);
}

}  // namespace
}  // namespace shopcqrs::adapters::http
