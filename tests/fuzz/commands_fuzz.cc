// libFuzzer harness: the write side's request decoding and validation, every command
// (adapters/http/command_routes.h: JSON body, Idempotency-Key, If-Match, then the fields; then
// the domain's own checks in app::CommandService).
//
// Input: byte 0 picks the command (mod 10, in the order of API.md), byte 1 holds flags, the
// rest is the body:
//   bit 0  the first line of the rest is sent as Idempotency-Key, the second as If-Match
//          (each line removed from the body)
//   bit 1  no Content-Type header (else application/json)
//   bit 2  the path id is the rest's first line instead of the seeded entity's id
// Each input runs on a fresh in-memory write store seeded with one customer, one product and
// one order, through the real routes (RegisterCommandRoutes), so a valid body goes all the way
// to the domain. A handler may answer any 2xx or 4xx; an exception, a 5xx or a response body
// that is not JSON is a finding.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/parse.hpp>

#include "adapters/http/command_routes.h"
#include "application/command_service.h"
#include "infra/http/router.h"
#include "infra/metrics/registry.h"
#include "support/in_memory_write_store.h"

namespace {

namespace http = shopcqrs::infra::http;
namespace app = shopcqrs::app;
namespace domain = shopcqrs::domain;
using shopcqrs::testing::InMemoryWriteStore;

// The seeded entities (docs/FUZZING.md; the corpus uses them).
constexpr std::string_view kCustomerId = "c0000000-0000-4000-8000-000000000001";
constexpr std::string_view kProductId = "d0000000-0000-4000-8000-000000000002";
constexpr std::string_view kOrderId = "e0000000-0000-4000-8000-000000000003";

// Hands out the seeded ids first, then counting ones.
class SeededIds : public app::IdGenerator {
 public:
  domain::Uuid NewId() override {
    static constexpr std::string_view kSeeded[] = {kCustomerId, kProductId, kOrderId};
    if (next_ < 3) return *domain::Uuid::Parse(kSeeded[next_++]);
    return domain::Uuid::V4FromRandom(0xf022, ++next_);
  }
  void Reset() { next_ = 0; }

 private:
  std::uint64_t next_ = 0;
};

// A write store replaced by a fresh one for every input (the service keeps a reference).
class FreshStore : public app::WriteStore {
 public:
  std::unique_ptr<app::WriteTransaction> Begin() override { return store_->Begin(); }
  std::string CurrentToken() override { return store_->CurrentToken(); }
  void Reset() { store_ = std::make_unique<InMemoryWriteStore>(); }

 private:
  std::unique_ptr<InMemoryWriteStore> store_ = std::make_unique<InMemoryWriteStore>();
};

struct Command {
  std::string_view method;
  std::string_view path;  // {id} is replaced by the id
  std::string_view id;    // the seeded entity's id, if the path has one
};
constexpr Command kCommands[] = {
    {"POST", "/v1/customers", {}},
    {"PATCH", "/v1/customers/{id}", kCustomerId},
    {"POST", "/v1/products", {}},
    {"POST", "/v1/products/{id}/price", kProductId},
    {"POST", "/v1/products/{id}/restock", kProductId},
    {"POST", "/v1/orders", {}},
    {"POST", "/v1/orders/{id}/pay", kOrderId},
    {"POST", "/v1/orders/{id}/ship", kOrderId},
    {"POST", "/v1/orders/{id}/deliver", kOrderId},
    {"POST", "/v1/orders/{id}/cancel", kOrderId},
};

struct Rig {
  FreshStore store;
  shopcqrs::testing::TestClock clock;
  SeededIds ids;
  app::CommandService service{store, clock, ids};
  shopcqrs::infra::metrics::Registry registry;
  http::Router router;

  Rig() { shopcqrs::adapters::http::RegisterCommandRoutes(router, service, registry); }

  void Seed() {
    store.Reset();
    ids.Reset();
    const auto customer = service.Handle(app::RegisterCustomer{"Ann", "ann@example.com"});
    const auto product = service.Handle(app::AddProduct{"SKU-1", "Mug", 250, 1000});
    const auto order = service.Handle(app::PlaceOrder{
        *domain::CustomerId::Parse(kCustomerId), {{*domain::ProductId::Parse(kProductId), 2}}});
    if (!customer || !product || !order || customer->id != kCustomerId ||
        product->id != kProductId || order->id != kOrderId) {
      std::abort();
    }
  }
};

// Removes and answers the first line of `text`.
std::string TakeLine(std::string& text) {
  const auto newline = text.find('\n');
  std::string line = text.substr(0, newline);
  text.erase(0, newline == std::string::npos ? text.size() : newline + 1);
  return line;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static Rig* rig = new Rig();
  if (size < 2) return 0;
  const Command& command = kCommands[data[0] % (sizeof kCommands / sizeof kCommands[0])];
  const std::uint8_t flags = data[1];
  std::string rest(reinterpret_cast<const char*>(data) + 2, size - 2);

  http::Request request;
  request.method = std::string(command.method);
  request.request_id = "fuzz";
  if (flags & 1) {
    request.headers.emplace_back("Idempotency-Key", TakeLine(rest));
    request.headers.emplace_back("If-Match", TakeLine(rest));
  }
  std::string id(command.id);
  if ((flags & 4) && !id.empty()) id = TakeLine(rest);
  std::string path(command.path);
  if (const auto brace = path.find("{id}"); brace != std::string::npos) {
    path.replace(brace, 4, id);
  }
  request.SetTarget(std::move(path));
  if (!(flags & 2)) request.headers.emplace_back("Content-Type", "application/json");
  request.body = std::move(rest);

  rig->Seed();
  const http::Response response = rig->router.Dispatch(request);
  if (response.status < 200 || response.status >= 500) std::abort();
  if (!response.body.empty()) (void)boost::json::parse(response.body);  // throws if not JSON
  return 0;
}
