// A supervised nats-server with JetStream against the real binary: start, file-storage
// streams, data across Stop/Start, kill -9 and restart by the supervisor, port choice.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nats/nats.h>

#include "devstack/nats_server.h"
#include "devstack/postgres_server.h"
#include "devstack/process.h"
#include "support/eventually.h"
#include "support/temp_dir.h"

namespace shopcqrs {
namespace {

using namespace std::chrono_literals;
using devstack::NatsServer;
using test_support::Eventually;
using test_support::TempDir;

constexpr auto kDeadline = 20s;

NatsServer::Options TestOptions(const std::filesystem::path& data_dir) {
  return {.data_dir = data_dir, .name = "test-nats"};
}

void Check(natsStatus status, jsErrCode js_error, const std::string& what) {
  if (status == NATS_OK) return;
  const char* last = nats_GetLastError(nullptr);
  throw std::runtime_error(fmt::format("{}: {} (JetStream error {}) {}", what,
                                       natsStatus_GetText(status), static_cast<int>(js_error),
                                       last != nullptr ? last : ""));
}

// A minimal JetStream client on libnats.
class Client {
 public:
  explicit Client(const std::string& url) {
    natsOptions* options = nullptr;
    Check(natsOptions_Create(&options), {}, "options");
    std::unique_ptr<natsOptions, void (*)(natsOptions*)> owned(options, &natsOptions_Destroy);
    Check(natsOptions_SetURL(options, url.c_str()), {}, "url");
    Check(natsOptions_SetTimeout(options, 5000), {}, "timeout");
    Check(natsOptions_SetAllowReconnect(options, false), {}, "reconnect");
    Check(natsConnection_Connect(&connection_, options), {}, "connect to " + url);
    jsOptions js_options;
    jsOptions_Init(&js_options);
    js_options.Wait = 10'000;
    Check(natsConnection_JetStream(&js_, connection_, &js_options), {}, "jetstream");
  }
  ~Client() {
    jsCtx_Destroy(js_);
    natsConnection_Destroy(connection_);
  }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // A file-storage stream on `subject`.
  void AddStream(const std::string& name, const std::string& subject) {
    jsStreamConfig config;
    jsStreamConfig_Init(&config);
    config.Name = name.c_str();
    const char* subjects[] = {subject.c_str()};
    config.Subjects = subjects;
    config.SubjectsLen = 1;
    config.Storage = js_FileStorage;
    jsStreamInfo* info = nullptr;
    jsErrCode js_error{};
    const natsStatus status = js_AddStream(&info, js_, &config, nullptr, &js_error);
    if (info != nullptr) jsStreamInfo_Destroy(info);
    Check(status, js_error, "add stream " + name);
  }

  // Returns the stream sequence of the stored message.
  std::uint64_t Publish(const std::string& subject, const std::string& data) {
    jsPubAck* ack = nullptr;
    jsErrCode js_error{};
    const natsStatus status = js_Publish(&ack, js_, subject.c_str(), data.data(),
                                         static_cast<int>(data.size()), nullptr, &js_error);
    const std::uint64_t sequence = ack != nullptr ? ack->Sequence : 0;
    if (ack != nullptr) jsPubAck_Destroy(ack);
    Check(status, js_error, "publish to " + subject);
    return sequence;
  }

  std::string Get(const std::string& stream, std::uint64_t sequence) {
    natsMsg* msg = nullptr;
    jsErrCode js_error{};
    Check(js_GetMsg(&msg, js_, stream.c_str(), sequence, nullptr, &js_error), js_error,
          fmt::format("get {} #{}", stream, sequence));
    std::string data(natsMsg_GetData(msg), static_cast<std::size_t>(natsMsg_GetDataLength(msg)));
    natsMsg_Destroy(msg);
    return data;
  }

  std::uint64_t MessageCount(const std::string& stream) {
    jsStreamInfo* info = nullptr;
    jsErrCode js_error{};
    Check(js_GetStreamInfo(&info, js_, stream.c_str(), nullptr, &js_error), js_error,
          "stream info " + stream);
    const std::uint64_t count = info->State.Msgs;
    jsStreamInfo_Destroy(info);
    return count;
  }

 private:
  natsConnection* connection_ = nullptr;
  jsCtx* js_ = nullptr;
};

// Publishes "m1".."m<n>" to ORDERS and checks their sequences.
void PublishOrders(Client& client, int from, int to) {
  for (int i = from; i <= to; ++i) {
    ASSERT_EQ(client.Publish("orders.placed", fmt::format("m{}", i)),
              static_cast<std::uint64_t>(i));
  }
}

// Creates the ORDERS stream on the server at `url` and publishes "m1".."m<count>" to it.
void CreateOrders(const std::string& url, int count) {
  Client client(url);
  client.AddStream("ORDERS", "orders.>");
  PublishOrders(client, 1, count);
}

void ExpectOrders(Client& client, int count) {
  EXPECT_EQ(client.MessageCount("ORDERS"), static_cast<std::uint64_t>(count));
  for (int i = 1; i <= count; ++i) {
    EXPECT_EQ(client.Get("ORDERS", static_cast<std::uint64_t>(i)), fmt::format("m{}", i));
  }
}

int RecordedPort(const std::filesystem::path& data_dir) {
  std::ifstream in(data_dir / "port");
  int port = 0;
  in >> port;
  return port;
}

// Holds a listening socket on 127.0.0.1:port.
class PortBlocker {
 public:
  explicit PortBlocker(int port) : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    if (fd_ < 0) throw std::runtime_error("socket failed");
    const int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<std::uint16_t>(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
        ::listen(fd_, 1) != 0) {
      ::close(fd_);
      throw std::runtime_error(fmt::format("cannot listen on port {}", port));
    }
  }
  ~PortBlocker() { ::close(fd_); }
  PortBlocker(const PortBlocker&) = delete;
  PortBlocker& operator=(const PortBlocker&) = delete;

 private:
  int fd_;
};

// A temporary directory, and a NatsServer (not started) on its data/.
class NatsServerTest : public ::testing::Test {
 protected:
  TempDir dir_;
  NatsServer server_{TestOptions(dir_.Path() / "data")};
};

TEST_F(NatsServerTest, StartsWithJetStreamFileStorage) {
  server_.Start();
  ASSERT_TRUE(server_.IsRunning());
  EXPECT_GT(server_.Port(), 0);
  EXPECT_GT(server_.Pid(), 0);
  EXPECT_EQ(server_.Url(), fmt::format("nats://127.0.0.1:{}", server_.Port()));
  EXPECT_EQ(RecordedPort(server_.DataDir()), server_.Port());
  EXPECT_EQ(server_.Restarts(), 0);
  server_.Start();  // no-op while running
  EXPECT_TRUE(server_.IsRunning());

  Client client(server_.Url());
  client.AddStream("ORDERS", "orders.>");
  PublishOrders(client, 1, 5);
  ExpectOrders(client, 5);
  EXPECT_TRUE(std::filesystem::is_directory(server_.DataDir() / "jetstream"));
  EXPECT_TRUE(std::filesystem::exists(server_.LogFile()));

  server_.Stop();
  EXPECT_FALSE(server_.IsRunning());
  server_.Stop();  // no-op when stopped
}

TEST_F(NatsServerTest, DataSurvivesStopAndStart) {
  server_.Start();
  const int port = server_.Port();
  CreateOrders(server_.Url(), 10);
  server_.Stop();
  ASSERT_FALSE(server_.IsRunning());

  server_.Start();
  EXPECT_EQ(server_.Port(), port);  // the previous port, still free
  Client client(server_.Url());
  ExpectOrders(client, 10);
  PublishOrders(client, 11, 12);
  ExpectOrders(client, 12);

  // A second server object on the same data directory finds the same data too.
  server_.Stop();
  NatsServer again(TestOptions(dir_.Path() / "data"));
  again.Start();
  Client other(again.Url());
  ExpectOrders(other, 12);
}

TEST_F(NatsServerTest, KilledChildIsRestartedOnSamePortWithItsStreams) {
  server_.Start();
  const int port = server_.Port();
  CreateOrders(server_.Url(), 20);
  const pid_t pid = server_.Pid();
  ASSERT_GT(pid, 0);
  ASSERT_EQ(::kill(pid, SIGKILL), 0);

  ASSERT_TRUE(Eventually([&] { return server_.Restarts() >= 1; }, kDeadline))
      << "not restarted; log:\n"
      << devstack::TailFile(server_.LogFile(), 20);
  EXPECT_EQ(server_.Restarts(), 1);
  EXPECT_TRUE(server_.IsRunning());
  EXPECT_NE(server_.Pid(), pid);
  EXPECT_EQ(server_.Port(), port);

  Client client(server_.Url());
  ExpectOrders(client, 20);
  PublishOrders(client, 21, 22);  // the stream goes on where it was
  ExpectOrders(client, 22);
  server_.Stop();
  EXPECT_FALSE(server_.IsRunning());
}

TEST_F(NatsServerTest, PicksAnotherPortWhenThePreviousOneIsTaken) {
  server_.Start();
  const int previous = server_.Port();
  CreateOrders(server_.Url(), 3);
  server_.Stop();

  PortBlocker blocker(previous);
  server_.Start();
  EXPECT_NE(server_.Port(), previous);
  EXPECT_EQ(RecordedPort(server_.DataDir()), server_.Port());
  Client client(server_.Url());
  ExpectOrders(client, 3);
}

TEST_F(NatsServerTest, StartFailsWithTheLogTailWhenAnExplicitPortIsTaken) {
  const int port = devstack::FindFreePort();
  PortBlocker blocker(port);
  auto options = TestOptions(dir_.Path() / "data");
  options.port = port;
  options.start_timeout = 20s;
  NatsServer server(options);
  try {
    server.Start();
    FAIL() << "Start() succeeded on a taken port";
  } catch (const std::runtime_error& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find("nats.log"), std::string::npos) << message;
    EXPECT_NE(message.find(std::to_string(port)), std::string::npos) << message;
  }
  EXPECT_FALSE(server.IsRunning());
}

// A nats-server left running by a killed predecessor (the command a NatsServer runs, in the data
// directory, holding the port recorded there) is stopped cleanly (SIGTERM) and started again
// under the new supervisor, on that port, with its streams.
TEST_F(NatsServerTest, StopsTheServerOfAKilledPredecessorAndStartsItAgainOnItsPort) {
  const auto data_dir = dir_.Path() / "data";
  std::filesystem::create_directories(data_dir);
  const int port = devstack::FindFreePort();
  std::ofstream(data_dir / "port") << port << '\n';
  devstack::ChildProcess leftover;
  devstack::ChildProcessOptions command;
  command.argv = {"/usr/sbin/nats-server",
                  "--jetstream",
                  "--store_dir",
                  data_dir.string(),
                  "--addr",
                  "127.0.0.1",
                  "--port",
                  std::to_string(port)};
  command.log_file = data_dir / "nats.log";
  command.working_dir = data_dir;
  leftover.Start(command);
  const std::string url = fmt::format("nats://127.0.0.1:{}", port);
  ASSERT_TRUE(Eventually(
      [&] {
        try {
          Client probe(url);
          return true;
        } catch (const std::runtime_error&) {
          return false;
        }
      },
      kDeadline));
  CreateOrders(url, 5);

  NatsServer server(TestOptions(data_dir));
  server.Start();
  const auto exit = leftover.Wait(1s);  // it is gone by the time Start returns
  ASSERT_TRUE(exit.has_value()) << "the leftover nats-server is still running";
  EXPECT_NE(exit->signal, SIGKILL) << exit->Describe();  // stopped, not killed
  EXPECT_NE(server.Pid(), leftover.Pid());
  EXPECT_EQ(server.Port(), port);
  EXPECT_EQ(RecordedPort(server.DataDir()), port);
  Client client(server.Url());
  ExpectOrders(client, 5);
  PublishOrders(client, 6, 7);
  ExpectOrders(client, 7);
}

}  // namespace
}  // namespace shopcqrs
