// libFuzzer harness: the HTTP router with the service's real route table, and the request
// target's path and query decoding (infra/http/router.h: Request::SetTarget, ParseQuery,
// PercentDecode, Router::Dispatch).
//
// Input: byte 0 picks the method (mod 8: GET, HEAD, POST, PATCH, PUT, DELETE, OPTIONS and a
// lowercase "get"); the rest's first line is the request target, its second line, if any, is
// sent as X-Consistency-Token and its third as X-Consistency-Wait-Ms. The routes are the ones
// `serve` registers (commands on an in-memory write store, queries on a read model that knows
// nothing, admin and operations), so every pattern and handler's path and query checks run.
// The answer must be a 2xx, 3xx or 4xx (the read model and stores never fail here), with a
// JSON body where the content type says so; the target's pieces must decode consistently.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/parse.hpp>

#include "adapters/http/admin_routes.h"
#include "adapters/http/command_routes.h"
#include "adapters/http/ops_routes.h"
#include "adapters/http/query_routes.h"
#include "application/command_service.h"
#include "application/read_model.h"
#include "cqrs/consistency_token.h"
#include "cqrs/projector.h"
#include "infra/http/router.h"
#include "infra/metrics/registry.h"
#include "support/empty_read_model.h"
#include "support/in_memory_write_store.h"

namespace {

namespace http = shopcqrs::infra::http;
namespace app = shopcqrs::app;
namespace domain = shopcqrs::domain;
namespace routes = shopcqrs::adapters::http;

// Answers every query with nothing.
using shopcqrs::test_support::EmptyReadModel;

struct Rig {
  shopcqrs::testing::InMemoryWriteStore store;
  shopcqrs::testing::TestClock clock;
  shopcqrs::testing::CountingIds ids;
  app::CommandService service{store, clock, ids};
  EmptyReadModel model;
  shopcqrs::cqrs::ConsistencyTokens tokens{"fuzz-token-key-0123456789"};
  shopcqrs::cqrs::ProgressTracker read_pg, redis, search;
  shopcqrs::infra::metrics::Registry registry;
  http::Router router;

  Rig() {
    // Every store is ahead of any token: no query waits.
    const auto ahead = std::numeric_limits<std::uint64_t>::max() >> 1;
    read_pg.Publish(ahead);
    redis.Publish(ahead);
    search.Publish(ahead);
    routes::RegisterCommandRoutes(router, service, registry);
    routes::RegisterQueryRoutes(router, model, tokens, read_pg, registry, &redis, {}, &search);
    routes::RegisterAdminRoutes(router, [] {
      return std::vector<routes::ProjectionInfo>{{"read_pg", "read_pg", "running", 7, 0, 1, 0, ""}};
    });
    routes::RegisterOpsRoutes(router, registry, {{"write_db", [] { return true; }}});
  }
};

std::string_view TakeLine(std::string_view& text) {
  const auto newline = text.find('\n');
  const std::string_view line = text.substr(0, newline);
  text.remove_prefix(newline == std::string_view::npos ? text.size() : newline + 1);
  return line;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static Rig* rig = new Rig();
  static constexpr std::string_view kMethods[] = {"GET", "HEAD",   "POST",    "PATCH",
                                                  "PUT", "DELETE", "OPTIONS", "get"};
  if (size < 1) return 0;
  std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  const std::string_view target = TakeLine(rest);

  http::Request request;
  request.method = std::string(kMethods[data[0] % 8]);
  request.request_id = "fuzz";
  if (!rest.empty()) request.headers.emplace_back("X-Consistency-Token", TakeLine(rest));
  if (!rest.empty()) request.headers.emplace_back("X-Consistency-Wait-Ms", TakeLine(rest));
  request.SetTarget(std::string(target));

  // The target's pieces.
  const auto question = target.find('?');
  if (request.path != target.substr(0, question)) std::abort();
  if (question != std::string_view::npos) {
    const auto query = http::ParseQuery(target.substr(question + 1));
    if (query.has_value() == request.malformed_query) std::abort();
  } else if (request.malformed_query || !request.query.empty()) {
    std::abort();
  }
  if (request.path.find('%') == std::string::npos) {
    const auto same = http::PercentDecode(request.path, false);
    if (!same || *same != request.path) std::abort();  // nothing to decode
  }

  const http::Response response = rig->router.Dispatch(request);
  if (response.status < 200 || response.status >= 500) std::abort();
  if (response.content_type.find("json") != std::string::npos && !response.body.empty()) {
    (void)boost::json::parse(response.body);  // throws if not JSON
  }
  return 0;
}
