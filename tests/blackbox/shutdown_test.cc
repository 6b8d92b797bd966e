// Black-box graceful-shutdown test: a private `shopcqrs up` instance (own data directory)
// receives SIGTERM while clients keep sending commands. Requests in flight must complete with
// a full response, the process must exit 0 and its PostgreSQL servers must be gone. Restarting
// on the same data directory then shows that every acknowledged command was kept; a SIGINT
// finally stops the restarted instance just as cleanly.

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "blackbox/service_fixture.h"

namespace shopcqrs::blackbox {
namespace {

using namespace std::chrono_literals;

// The suite's private instance: its data directory is created once (initdb takes seconds) and
// reused by each test. An environment starts it in the background when the run begins, in
// parallel with the shared instance; each test then takes it over (Ready()).
ServiceProcess& PrivateInstance() {
  static ServiceProcess instance("shopcqrs-bb-shutdown");
  return instance;
}

std::future<std::string>& Prewarm() {
  static std::future<std::string> prewarm;
  return prewarm;
}

class PrivateInstanceEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    if (!AnySelectedTestIn([](std::string_view suite) { return suite == "ShutdownTest"; })) {
      return;
    }
    // Fork on the main thread (see ShopcqrsProcess), wait for it in the background.
    try {
      PrivateInstance().Spawn();
    } catch (const std::exception& e) {
      std::promise<std::string> failed;
      failed.set_value(e.what());
      Prewarm() = failed.get_future();
      return;
    }
    Prewarm() = std::async(std::launch::async, []() -> std::string {
      try {
        PrivateInstance().WaitUntilServing();
        return {};
      } catch (const std::exception& e) {
        return e.what();
      }
    });
  }
};

const ::testing::Environment* const kPrivateInstanceEnvironment =
    ::testing::AddGlobalTestEnvironment(new PrivateInstanceEnvironment);

// The private instance, running with its stdout going where `mode` says. "" or an error.
std::string Ready(ServiceProcess::Stdout mode = ServiceProcess::Stdout::kFile) {
  ServiceProcess& service = PrivateInstance();
  if (Prewarm().valid()) {
    const std::string error = Prewarm().get();
    if (!error.empty()) return error;
  }
  if (service.running() && mode != ServiceProcess::Stdout::kFile) service.Stop(SIGTERM, 60s);
  if (service.running()) return {};
  try {
    service.Start(120s, mode);
    return {};
  } catch (const std::exception& e) {
    return e.what();
  }
}

TEST(ShutdownTest, SigtermCompletesInFlightRequestsAndStopsPostgres) {
  ServiceProcess& service = PrivateInstance();
  if (const auto error = Ready(); !error.empty()) GTEST_FAIL() << error;
  const Endpoint endpoint{service.host(), service.port()};

  Api setup(endpoint);
  const Customer customer = CreateCustomer(setup);
  constexpr std::int64_t kStock = 1000;
  const Product product = CreateProduct(setup, 10, kStock);
  ASSERT_FALSE(HasFailure()) << service.Diagnostics();

  const std::vector<pid_t> postmasters = service.PostmasterPids();
  ASSERT_EQ(postmasters.size(), 2u) << "expected a write and a read PostgreSQL server";
  for (pid_t pid : postmasters) ASSERT_TRUE(service.IsOurPostgres(pid)) << pid;

  // Clients hammer the service until it stops answering.
  constexpr int kClients = 8;
  std::atomic<int> responses{0};
  std::atomic<int> acknowledged{0};  // 201s
  std::atomic<int> undetermined{0};  // requests that may or may not have been done
  std::atomic<int> after_signal{0};  // responses received after SIGTERM was sent
  std::atomic<bool> signalled{false};
  std::mutex mutex;
  std::vector<std::string> problems;
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&] {
      Api api(endpoint, 10s);
      const auto give_up = std::chrono::steady_clock::now() + 60s;
      while (std::chrono::steady_clock::now() < give_up) {
        try {
          const auto r = PlaceOrder(api, customer.id, {{product.id, 1}});
          ++responses;
          if (signalled) ++after_signal;
          if (r.status == 201) {
            ++acknowledged;
          } else if (r.status != 503 && !(r.status == 409 && r.Code() == "insufficient_stock")) {
            std::lock_guard lock(mutex);
            problems.push_back("unexpected response " + std::to_string(r.status) + " " + r.body);
          }
        } catch (const HttpError& e) {
          const std::string what = e.what();
          // Refused or closed before any response byte: the request was not in flight (it
          // was sent to a server that had stopped accepting work). A read that fails after
          // part of a response, or times out, means an in-flight request was dropped.
          if (what.starts_with("read failed")) {
            ++undetermined;
            std::lock_guard lock(mutex);
            problems.push_back("in-flight request dropped: " + what);
          } else if (!signalled) {
            std::lock_guard lock(mutex);
            problems.push_back("transport error before SIGTERM: " + what);
          } else if (what.find("connect failed") == std::string::npos) {
            ++undetermined;  // written, then the connection closed without an answer
          }
          return;
        }
      }
      std::lock_guard lock(mutex);
      problems.push_back("the service kept answering for 60 s after SIGTERM");
    });
  }

  // Let the load build up, then signal while requests are in flight.
  const auto warmup_deadline = std::chrono::steady_clock::now() + 10s;
  while (responses < 40 && std::chrono::steady_clock::now() < warmup_deadline) {
    std::this_thread::sleep_for(5ms);
  }
  EXPECT_GE(responses.load(), 40) << "the clients did not get going";
  signalled = true;
  service.Signal(SIGTERM);
  const auto status = service.Wait(60s);
  for (auto& t : clients) t.join();

  for (const auto& p : problems) ADD_FAILURE() << p;
  ASSERT_TRUE(status.has_value()) << "shopcqrs did not exit within 60 s of SIGTERM\n"
                                  << service.Diagnostics();
  EXPECT_TRUE(status->Success()) << status->Describe() << "\n" << service.Diagnostics();
  std::printf("[          ] %d responses (%d after SIGTERM), %d acknowledged, %d undetermined\n",
              responses.load(), after_signal.load(), acknowledged.load(), undetermined.load());

  // Its PostgreSQL servers are gone (and shut down cleanly: no postmaster.pid left).
  for (pid_t pid : postmasters) {
    bool gone = false;
    for (int i = 0; i < 100 && !gone; ++i) {
      gone = !service.IsOurPostgres(pid);
      if (!gone) std::this_thread::sleep_for(50ms);
    }
    EXPECT_TRUE(gone) << "PostgreSQL pid " << pid << " still running after shopcqrs exited";
  }
  EXPECT_TRUE(ProcessesMentioning(service.data_dir()).empty())
      << "processes still use " << service.data_dir();
  EXPECT_TRUE(service.PostmasterPids().empty()) << "a postmaster.pid file was left behind";
  if (HasFailure()) return;

  // Restart on the same data: every acknowledged order kept its stock, nothing else did
  // (apart from requests whose outcome the client could not know).
  try {
    service.Start();
  } catch (const std::exception& e) {
    GTEST_FAIL() << "restart on the same data directory failed: " << e.what();
  }
  Api after(Endpoint{service.host(), service.port()});
  const std::int64_t left_max = kStock - acknowledged.load();
  const std::int64_t left_min = left_max - undetermined.load();
  ASSERT_GE(left_min, 0);
  if (left_max + 1 <= 1000) {
    EXPECT_TRUE(IsProblem(PlaceOrder(after, customer.id, {{product.id, left_max + 1}}), 409,
                          "insufficient_stock"))
        << "acknowledged orders must survive the restart";
  }
  if (left_min > 0) {
    EXPECT_TRUE(IsCommandSuccess(PlaceOrder(after, customer.id, {{product.id, left_min}}), 201, 1))
        << "at least " << left_min << " units must be left";
  }
  // SIGINT stops it just as cleanly.
  const auto restarted_postmasters = service.PostmasterPids();
  const auto second = service.Stop(SIGINT, 60s);
  ASSERT_TRUE(second.has_value()) << service.Diagnostics();
  EXPECT_TRUE(second->Success()) << second->Describe();
  for (pid_t pid : restarted_postmasters) EXPECT_FALSE(service.IsOurPostgres(pid)) << pid;
}

// BUG (robustness, not an API.md status/body): the service logs to stdout and does not ignore
// SIGPIPE. When whatever read its stdout has gone (a log pipe, `shopcqrs up | head -1`, a
// supervisor that restarted), the "received SIGTERM" log line kills it with SIGPIPE before it
// stops its PostgreSQL servers, which are left running orphaned. API.md: `up` "stops its servers
// on SIGINT/SIGTERM".
TEST(ShutdownTest, SigtermWithClosedStdoutStillStopsPostgres) {
  ServiceProcess& service = PrivateInstance();
  if (const auto error = Ready(ServiceProcess::Stdout::kPipe); !error.empty())
    GTEST_FAIL() << error;
  const auto postmasters = service.PostmasterPids();
  ASSERT_EQ(postmasters.size(), 2u);
  service.CloseStdoutPipe();
  service.Signal(SIGTERM);
  const auto status = service.Wait(60s);
  ASSERT_TRUE(status.has_value()) << "shopcqrs did not exit within 60 s of SIGTERM";
  EXPECT_TRUE(status->Success()) << status->Describe() << "\n" << service.Diagnostics();
  std::vector<pid_t> orphans;
  for (pid_t pid : postmasters) {
    bool gone = false;
    for (int i = 0; i < 20 && !gone; ++i) {
      gone = !service.IsOurPostgres(pid);
      if (!gone) std::this_thread::sleep_for(50ms);
    }
    if (!gone) orphans.push_back(pid);
  }
  EXPECT_TRUE(orphans.empty()) << orphans.size()
                               << " PostgreSQL server(s) left running after shopcqrs exited";
  service.StopOrphanedPostgres();  // clean up after the bug
}

}  // namespace
}  // namespace shopcqrs::blackbox
