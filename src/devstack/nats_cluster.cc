#include "devstack/nats_cluster.h"

#include <algorithm>
#include <fstream>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <thread>

#include <fmt/format.h>
#include <nats/nats.h>
#include <spdlog/spdlog.h>

#include "devstack/server_supervisor.h"

namespace shopcqrs::devstack {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

template <auto Destroy>
struct Destroyer {
  template <typename T>
  void operator()(T* p) const {
    Destroy(p);
  }
};

// A short-lived JetStream client of every URL in `urls`; nullptr (and `error`) when none answers.
struct Client {
  std::unique_ptr<natsConnection, Destroyer<&natsConnection_Destroy>> connection;
  std::unique_ptr<jsCtx, Destroyer<&jsCtx_Destroy>> js;
};

std::string LastError(natsStatus status) {
  std::string text = natsStatus_GetText(status);
  if (const char* last = nats_GetLastError(nullptr); last != nullptr && *last != '\0') {
    text += ": ";
    text += last;
  }
  return text;
}

std::optional<Client> Connect(const std::vector<std::string>& urls, std::string* error) {
  natsOptions* raw = nullptr;
  natsStatus status = natsOptions_Create(&raw);
  std::unique_ptr<natsOptions, Destroyer<&natsOptions_Destroy>> options(raw);
  std::vector<const char*> servers;
  for (const auto& url : urls) servers.push_back(url.c_str());
  if (status == NATS_OK) {
    status = natsOptions_SetServers(options.get(), servers.data(), static_cast<int>(urls.size()));
  }
  if (status == NATS_OK) status = natsOptions_SetNoRandomize(options.get(), true);
  if (status == NATS_OK) status = natsOptions_SetTimeout(options.get(), 1000);
  if (status == NATS_OK) status = natsOptions_SetAllowReconnect(options.get(), false);
  if (status == NATS_OK) status = natsOptions_SetName(options.get(), "shopcqrs-cluster-probe");
  natsConnection* connection = nullptr;
  if (status == NATS_OK) status = natsConnection_Connect(&connection, options.get());
  Client client;
  client.connection.reset(connection);
  jsOptions js_options;
  jsOptions_Init(&js_options);
  js_options.Wait = 2000;
  jsCtx* js = nullptr;
  if (status == NATS_OK) status = natsConnection_JetStream(&js, connection, &js_options);
  client.js.reset(js);
  if (status != NATS_OK) {
    if (error) *error = LastError(status);
    return std::nullopt;
  }
  return client;
}

}  // namespace

NatsCluster::NatsCluster(Options options) : options_(std::move(options)) {
  if (options_.data_dir.empty()) throw std::runtime_error("NatsCluster: data_dir is empty");
  if (options_.nodes < 1) throw std::runtime_error("NatsCluster: at least one node");
  options_.data_dir = fs::absolute(options_.data_dir).lexically_normal();
}

NatsCluster::~NatsCluster() {
  try {
    Stop();
  } catch (const std::exception& error) {
    spdlog::error("[{}] stopping the NATS cluster failed: {}", options_.name, error.what());
  }
}

std::string NatsCluster::ServerName(int k) const {
  return fmt::format("{}-{}", options_.name, k + 1);
}

int NatsCluster::NodeMonitorPort(int k) const { return ports_.at(k).monitor; }

std::vector<NatsCluster::Ports> NatsCluster::ChoosePorts() const {
  const auto file = options_.data_dir / "ports";
  std::vector<Ports> recorded;
  if (std::ifstream in(file); in) {
    Ports ports;
    while (in >> ports.client >> ports.cluster >> ports.monitor) recorded.push_back(ports);
  }
  auto free = [&](const Ports& p) {
    return IsPortFree(p.client) && IsPortFree(p.cluster) &&
           (!options_.monitoring || IsPortFree(p.monitor));
  };
  if (static_cast<int>(recorded.size()) == options_.nodes &&
      std::all_of(recorded.begin(), recorded.end(), free)) {
    return recorded;
  }
  if (!recorded.empty()) {
    spdlog::info("[{}] the ports of the previous run are taken or do not fit; choosing others",
                 options_.name);
  }
  std::set<int> taken;
  auto pick = [&] {
    for (;;) {
      const int port = FindFreePort();
      if (taken.insert(port).second) return port;
    }
  };
  std::vector<Ports> chosen;
  for (int k = 0; k < options_.nodes; ++k) {
    Ports ports;
    ports.client = pick();
    ports.cluster = pick();
    ports.monitor = options_.monitoring ? pick() : 0;
    chosen.push_back(ports);
  }
  fs::create_directories(options_.data_dir);
  std::ofstream out(file);
  for (const auto& p : chosen) out << p.client << ' ' << p.cluster << ' ' << p.monitor << '\n';
  return chosen;
}

void NatsCluster::Start() {
  if (nodes_.empty()) {
    ports_ = ChoosePorts();
    const std::string host = options_.bind == "::1" ? "[::1]" : options_.bind;
    for (int k = 0; k < options_.nodes; ++k) {
      NatsServer::Options node;
      node.data_dir = options_.data_dir / fmt::format("node-{}", k + 1);
      node.name = ServerName(k);
      node.port = ports_[k].client;
      node.bind = options_.bind;
      node.binary = options_.binary;
      node.start_timeout = options_.start_timeout;
      node.stop_timeout = options_.stop_timeout;
      node.check_interval = options_.check_interval;
      node.nice = options_.nice;
      node.monitor_port = ports_[k].monitor;
      node.server_name = ServerName(k);
      if (options_.nodes > 1) {
        node.cluster_name = options_.name;
        node.cluster_port = ports_[k].cluster;
        for (int other = 0; other < options_.nodes; ++other) {
          if (other != k) {
            node.routes.push_back(fmt::format("nats://{}:{}", host, ports_[other].cluster));
          }
        }
      }
      nodes_.push_back(std::make_unique<NatsServer>(std::move(node)));
    }
  }
  for (auto& node : nodes_) node->Start();
  WaitForJetStream();
  spdlog::info("[{}] NATS JetStream cluster of {} node(s): {}", options_.name, Size(),
               ServerList());
}

void NatsCluster::WaitForJetStream() const {
  const auto deadline = std::chrono::steady_clock::now() + options_.start_timeout;
  std::string why = "not asked yet";
  while (std::chrono::steady_clock::now() < deadline) {
    if (auto client = Connect(Urls(), &why)) {
      jsAccountInfo* info = nullptr;
      jsErrCode code = static_cast<jsErrCode>(0);
      const natsStatus status = js_GetAccountInfo(&info, client->js.get(), nullptr, &code);
      jsAccountInfo_Destroy(info);
      if (status == NATS_OK) return;
      why = fmt::format("JetStream account info: {} (JetStream error {})", LastError(status),
                        static_cast<int>(code));
    }
    std::this_thread::sleep_for(100ms);
  }
  throw std::runtime_error(
      fmt::format("[{}] the NATS cluster's JetStream did not answer in {} ms: {}", options_.name,
                  options_.start_timeout.count(), why));
}

void NatsCluster::Stop() {
  for (auto& node : nodes_) node->Stop();
}

std::vector<std::string> NatsCluster::Urls() const {
  std::vector<std::string> urls;
  for (const auto& node : nodes_) urls.push_back(node->Url());
  return urls;
}

std::string NatsCluster::ServerList() const {
  std::string list;
  for (const auto& url : Urls()) {
    if (!list.empty()) list += ',';
    list += url;
  }
  return list;
}

void NatsCluster::KillNode(int k) { nodes_.at(k)->Kill(); }
void NatsCluster::StartNode(int k) { nodes_.at(k)->Start(); }
void NatsCluster::StopNode(int k) { nodes_.at(k)->Stop(); }

int NatsCluster::NodeNamed(std::string_view server_name) const {
  for (int k = 0; k < Size(); ++k) {
    if (ServerName(k) == server_name) return k;
  }
  return -1;
}

int NatsCluster::StreamLeader(std::string_view stream) const {
  auto client = Connect(Urls(), nullptr);
  if (!client) return -1;
  const std::string name(stream);
  jsStreamInfo* info = nullptr;
  jsErrCode code = static_cast<jsErrCode>(0);
  if (js_GetStreamInfo(&info, client->js.get(), name.c_str(), nullptr, &code) != NATS_OK) return -1;
  std::unique_ptr<jsStreamInfo, Destroyer<&jsStreamInfo_Destroy>> owned(info);
  if (info->Cluster == nullptr || info->Cluster->Leader == nullptr) return -1;
  return NodeNamed(info->Cluster->Leader);
}

}  // namespace shopcqrs::devstack
