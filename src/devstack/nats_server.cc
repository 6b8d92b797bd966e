#include "devstack/nats_server.h"

#include <signal.h>

#include <algorithm>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string_view>

#include <fmt/format.h>
#include <nats/nats.h>
#include <spdlog/spdlog.h>

#include "devstack/postgres_server.h"

namespace shopcqrs::devstack {

using namespace std::chrono_literals;

namespace {

// unique_ptr deleter calling a libnats destroy function.
template <auto Destroy>
struct Destroyer {
  template <typename T>
  void operator()(T* p) const {
    Destroy(p);
  }
};

std::string StatusText(natsStatus status, jsErrCode js_error = static_cast<jsErrCode>(0)) {
  std::string text = natsStatus_GetText(status);
  if (js_error != 0) text += fmt::format(" (JetStream error {})", static_cast<int>(js_error));
  if (const char* last = nats_GetLastError(nullptr); last != nullptr && *last != '\0') {
    text += ": ";
    text += last;
  }
  return text;
}

// Empty when a client can connect to `url` and JetStream answers an account info request;
// otherwise why not. A restarted server accepts clients only after JetStream has recovered
// its streams from disk.
std::string ProbeJetStream(const std::string& url) {
  natsOptions* raw_options = nullptr;
  natsStatus status = natsOptions_Create(&raw_options);
  if (status != NATS_OK) return StatusText(status);
  std::unique_ptr<natsOptions, Destroyer<&natsOptions_Destroy>> options(raw_options);
  status = natsOptions_SetURL(options.get(), url.c_str());
  if (status == NATS_OK) status = natsOptions_SetTimeout(options.get(), 1000);
  if (status == NATS_OK) status = natsOptions_SetAllowReconnect(options.get(), false);
  if (status == NATS_OK) status = natsOptions_SetName(options.get(), "shopcqrs-readiness");
  if (status != NATS_OK) return StatusText(status);

  natsConnection* raw_connection = nullptr;
  status = natsConnection_Connect(&raw_connection, options.get());
  std::unique_ptr<natsConnection, Destroyer<&natsConnection_Destroy>> connection(raw_connection);
  if (status != NATS_OK) return "connect: " + StatusText(status);

  jsOptions js_options;
  jsOptions_Init(&js_options);
  js_options.Wait = 2000;
  jsCtx* raw_js = nullptr;
  status = natsConnection_JetStream(&raw_js, connection.get(), &js_options);
  std::unique_ptr<jsCtx, Destroyer<&jsCtx_Destroy>> js(raw_js);
  if (status != NATS_OK) return "jetstream: " + StatusText(status);

  jsAccountInfo* raw_info = nullptr;
  jsErrCode js_error = static_cast<jsErrCode>(0);
  status = js_GetAccountInfo(&raw_info, js.get(), nullptr, &js_error);
  std::unique_ptr<jsAccountInfo, Destroyer<&jsAccountInfo_Destroy>> info(raw_info);
  if (status != NATS_OK) return "jetstream account info: " + StatusText(status, js_error);
  return {};
}

// Empty when a client can connect to `url`; otherwise why not.
std::string ProbeClient(const std::string& url) {
  natsOptions* raw_options = nullptr;
  natsStatus status = natsOptions_Create(&raw_options);
  if (status != NATS_OK) return StatusText(status);
  std::unique_ptr<natsOptions, Destroyer<&natsOptions_Destroy>> options(raw_options);
  status = natsOptions_SetURL(options.get(), url.c_str());
  if (status == NATS_OK) status = natsOptions_SetTimeout(options.get(), 1000);
  if (status == NATS_OK) status = natsOptions_SetAllowReconnect(options.get(), false);
  if (status == NATS_OK) status = natsOptions_SetName(options.get(), "shopcqrs-readiness");
  if (status != NATS_OK) return StatusText(status);
  natsConnection* raw_connection = nullptr;
  status = natsConnection_Connect(&raw_connection, options.get());
  std::unique_ptr<natsConnection, Destroyer<&natsConnection_Destroy>> connection(raw_connection);
  if (status != NATS_OK) return "connect: " + StatusText(status);
  return {};
}

bool IsLoopbackOrAny(std::string_view bind) {
  return bind == "127.0.0.1" || bind == "::1" || bind == "localhost" || bind == "0.0.0.0" ||
         bind == "::" || bind.empty();
}

}  // namespace

NatsServer::NatsServer(Options options)
    : SupervisedServer("NatsServer", options, "nats.log", {.program = "nats-server"}),
      options_(std::move(options)) {}

NatsServer::~NatsServer() { Stop(); }

std::string NatsServer::Url() const {
  if (options_.bind == "::1") return fmt::format("nats://[::1]:{}", Port());
  const std::string host = IsLoopbackOrAny(options_.bind) ? "127.0.0.1" : options_.bind;
  return fmt::format("nats://{}:{}", host, Port());
}

// No -l: the server logs to stderr, which goes to LogFile() together with anything the Go
// runtime prints (flag errors, panics). --store_dir gets "jetstream" appended by the server.
ChildProcessOptions NatsServer::Command(int port) const {
  ChildProcessOptions child;
  child.argv = {options_.binary.string(),
                "--jetstream",
                "--store_dir",
                data_dir_.string(),
                "--addr",
                options_.bind,
                "--port",
                std::to_string(port)};
  if (options_.monitor_port > 0) {
    child.argv.insert(child.argv.end(), {"--http_port", std::to_string(options_.monitor_port)});
  }
  if (!options_.server_name.empty()) {
    child.argv.insert(child.argv.end(), {"--server_name", options_.server_name});
  }
  if (!options_.cluster_name.empty()) {
    const std::string host = options_.bind == "::1" ? "[::1]" : options_.bind;
    child.argv.insert(child.argv.end(), {"--cluster_name", options_.cluster_name, "--cluster",
                                         fmt::format("nats://{}:{}", host, options_.cluster_port)});
    if (!options_.routes.empty()) {
      std::string routes;
      for (const auto& route : options_.routes) {
        if (!routes.empty()) routes += ',';
        routes += route;
      }
      child.argv.insert(child.argv.end(), {"--routes", routes});
    }
  }
  return child;
}

std::string NatsServer::Probe(int) const {
  return options_.cluster_name.empty() ? ProbeJetStream(Url()) : ProbeClient(Url());
}

}  // namespace shopcqrs::devstack
