#include "adapters/nats/nats_server.h"

#include <signal.h>

#include <algorithm>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string_view>

#include <fmt/format.h>
#include <nats/nats.h>
#include <spdlog/spdlog.h>

#include "adapters/local/postgres_server.h"

namespace shopcqrs::adapters::nats {

namespace fs = std::filesystem;
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

bool IsLoopbackOrAny(std::string_view bind) {
  return bind == "127.0.0.1" || bind == "::1" || bind == "localhost" || bind == "0.0.0.0" ||
         bind == "::" || bind.empty();
}

}  // namespace

NatsServer::NatsServer(Options options) : options_(std::move(options)) {
  if (options_.data_dir.empty()) throw std::runtime_error("NatsServer: data_dir is empty");
  data_dir_ = fs::absolute(options_.data_dir).lexically_normal();
}

NatsServer::~NatsServer() {
  try {
    Stop();
  } catch (const std::exception& e) {
    spdlog::error("[{}] stopping nats-server failed: {}", options_.name, e.what());
  }
}

std::string NatsServer::Url() const {
  if (options_.bind == "::1") return fmt::format("nats://[::1]:{}", Port());
  const std::string host = IsLoopbackOrAny(options_.bind) ? "127.0.0.1" : options_.bind;
  return fmt::format("nats://{}:{}", host, Port());
}

bool NatsServer::IsRunning() { return child_.IsRunning(); }

int NatsServer::ChoosePort() const {
  if (options_.port > 0) return options_.port;
  std::ifstream in(data_dir_ / "port");
  int recorded = 0;
  if (in >> recorded && recorded > 0 && local::IsPortFree(recorded)) return recorded;
  return local::FindFreePort();
}

void NatsServer::Start() {
  std::lock_guard lifecycle(lifecycle_);
  if (supervisor_.joinable()) return;
  fs::create_directories(data_dir_);
  const int port = ChoosePort();
  port_ = port;
  std::ofstream(data_dir_ / "port") << port << '\n';
  {
    std::lock_guard lock(mutex_);
    stop_ = false;
    started_ = false;
    start_error_ = nullptr;
  }
  supervisor_ = std::thread([this] { Supervise(); });
  std::unique_lock lock(mutex_);
  changed_.wait(lock, [&] { return started_; });
  if (start_error_) {
    lock.unlock();
    supervisor_.join();
    std::rethrow_exception(start_error_);
  }
  spdlog::info("[{}] nats-server listening on {} (data {})", options_.name, Url(),
               data_dir_.string());
}

void NatsServer::Stop() {
  std::lock_guard lifecycle(lifecycle_);
  if (!supervisor_.joinable()) return;
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  changed_.notify_all();
  supervisor_.join();
}

void NatsServer::Spawn() {
  local::ChildProcessOptions child;
  // No -l: the server logs to stderr, which goes to LogFile() together with anything the Go
  // runtime prints (flag errors, panics). -sd appends "jetstream" to the store directory.
  child.argv = {options_.binary.string(),
                "--jetstream",
                "--store_dir",
                data_dir_.string(),
                "--addr",
                options_.bind,
                "--port",
                std::to_string(port_.load())};
  child.log_file = LogFile();
  child.working_dir = data_dir_;
  child.parent_death_signal = SIGKILL;  // spawned by the supervisor thread, which outlives it
  child_.Start(std::move(child));
}

void NatsServer::WaitReady() {
  const auto deadline = std::chrono::steady_clock::now() + options_.start_timeout;
  const std::string url = Url();
  std::string last_error = "not answering";
  while (std::chrono::steady_clock::now() < deadline) {
    if (!child_.IsRunning()) {
      const auto exit = child_.LastExit();
      throw std::runtime_error(fmt::format(
          "[{}] nats-server exited ({}) during start; last lines of {}:\n{}", options_.name,
          exit ? exit->Describe() : "unknown", LogFile().string(), local::TailFile(LogFile(), 20)));
    }
    last_error = ProbeJetStream(url);
    if (last_error.empty()) return;
    std::this_thread::sleep_for(20ms);
  }
  child_.Stop(SIGKILL, 1s);
  throw std::runtime_error(
      fmt::format("[{}] nats-server did not become ready in {} ms ({}); "
                  "last lines of {}:\n{}",
                  options_.name, options_.start_timeout.count(), last_error, LogFile().string(),
                  local::TailFile(LogFile(), 20)));
}

void NatsServer::Supervise() {
  try {
    Spawn();
    WaitReady();
  } catch (...) {
    std::lock_guard lock(mutex_);
    start_error_ = std::current_exception();
    started_ = true;
    changed_.notify_all();
    return;
  }
  {
    std::lock_guard lock(mutex_);
    started_ = true;
  }
  changed_.notify_all();

  auto backoff = options_.check_interval;
  while (true) {
    {
      std::unique_lock lock(mutex_);
      if (changed_.wait_for(lock, backoff, [&] { return stop_; })) break;
    }
    if (child_.IsRunning()) {
      backoff = options_.check_interval;
      continue;
    }
    const auto exit = child_.LastExit();
    spdlog::warn("[{}] nats-server died ({}); restarting it", options_.name,
                 exit ? exit->Describe() : "unknown");
    try {
      Spawn();
      WaitReady();
      ++restarts_;
      backoff = options_.check_interval;
      spdlog::info("[{}] nats-server restarted on port {}", options_.name, port_.load());
    } catch (const std::exception& error) {
      spdlog::error("[{}] restarting nats-server failed: {}", options_.name, error.what());
      child_.Stop(SIGKILL, 1s);
      backoff = std::min<std::chrono::milliseconds>(backoff * 2, 5s);
    }
  }
  // Graceful stop on this thread (the child's parent-death signal is tied to it). nats-server
  // shuts down cleanly on SIGTERM (JetStream included) and then exits with code 1.
  if (child_.IsRunning()) {
    auto exit = child_.Stop(SIGTERM, options_.stop_timeout);
    spdlog::info("[{}] nats-server stopped ({})", options_.name,
                 exit ? exit->Describe() : "not running");
  }
}

}  // namespace shopcqrs::adapters::nats
