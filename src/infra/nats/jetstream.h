#pragma once

#include <nats/nats.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

// A JetStream client on libnats: the connection, the stream calls the event log needs, and
// appends that cannot leave a gap or a duplicate (AppendChain). What the messages carry is the
// caller's (adapters/nats/event_messages.h for the event stream).
namespace shopcqrs::infra::nats {

// The header JetStream deduplicates by.
inline constexpr const char* kMsgIdHeader = "Nats-Msg-Id";

// A libnats call failed. `code` is the JetStream error code when the server sent one.
class NatsError : public std::runtime_error {
 public:
  NatsError(const std::string& what, natsStatus status, int js_code = 0)
      : std::runtime_error(what), status_(status), js_code_(js_code) {}
  natsStatus status() const { return status_; }
  int js_code() const { return js_code_; }

 private:
  natsStatus status_;
  int js_code_;
};

// Throws NatsError naming `what` when `status` is not NATS_OK.
void Check(natsStatus status, std::string_view what, jsErrCode js_code = static_cast<jsErrCode>(0));

// The value of header `key` of `message`; empty when it has none.
std::string_view MessageHeader(natsMsg* message, const char* key);
// Sets header `key` of `message` (throws NatsError).
void SetMessageHeader(natsMsg* message, const char* key, const std::string& value);

// A stream as EnsureStream creates it: file storage, limits retention with no limit (kept like
// the log it mirrors), the oldest messages discarded first should a limit ever be set.
struct StreamConfig {
  std::string name;
  std::vector<std::string> subjects;
  std::string description;
  std::chrono::seconds duplicate_window{120};  // Nats-Msg-Id deduplication
  // How many servers of a JetStream cluster hold the stream (1 on a single server; at most 5).
  int replicas = 1;
};

// The server URLs of a `url` setting: one URL or several separated by commas (the nodes of a
// cluster), spaces around each ignored, empty entries dropped.
std::vector<std::string> SplitServerUrls(std::string_view urls);

// One connection to nats-server with its JetStream context. `url` may list several servers
// (the nodes of a cluster, comma-separated): the connection is made to the first that answers,
// in the order given, and when it is lost libnats reconnects by itself in the background to
// any of them (and to the nodes the cluster told it of), forever: each server again after
// reconnect_wait, and once every server failed, after a delay that doubles per round up to
// max_reconnect_wait. Calls fail while it is disconnected; JetStream calls also fail (time
// out, or "no responders") while the stream has no leader, for instance during an election
// or while its replicas have lost their quorum.
class JetStreamConnection {
 public:
  struct Options {
    std::string url = "nats://127.0.0.1:4222";  // or several, comma-separated
    std::string name = "shopcqrs";
    std::chrono::milliseconds request_timeout{2000};  // JetStream API calls and publish acks
    std::chrono::milliseconds reconnect_wait{100};
    std::chrono::milliseconds max_reconnect_wait{2000};
    std::int64_t max_pending_publishes = 16384;
  };
  // Connects (throws NatsError when the server cannot be reached).
  explicit JetStreamConnection(Options options);
  ~JetStreamConnection();
  JetStreamConnection(const JetStreamConnection&) = delete;
  JetStreamConnection& operator=(const JetStreamConnection&) = delete;

  natsConnection* connection() const { return connection_; }
  jsCtx* js() const { return js_; }
  bool IsConnected() const;
  const Options& options() const { return options_; }

  // Creates the stream if it does not exist (idempotent, safe from several processes). With
  // `reconcile_replicas`, an existing stream whose replicas differ from stream.replicas is
  // updated to them (JetStream moves the replicas; the stream keeps its messages).
  void EnsureStream(const StreamConfig& stream, bool reconcile_replicas = false);
  // The replicas of an existing stream and the server name of its leader (empty when it has
  // none right now, or on a server without clustering).
  std::pair<int, std::string> StreamPlacement(std::string_view stream);
  // The last sequence of the stream (0 when empty).
  std::uint64_t LastSequence(std::string_view stream);
  // The first sequence still held (1 for a stream that never dropped anything).
  std::uint64_t FirstSequence(std::string_view stream);
  // (first, last) in one request.
  std::pair<std::uint64_t, std::uint64_t> Sequences(std::string_view stream);
  // The message at `sequence` (owned by the caller); nullptr when there is none.
  natsMsg* GetMessage(std::string_view stream, std::uint64_t sequence);

  // Failures of asynchronous publishes since the last call (and the first error text).
  std::int64_t TakePublishFailures(std::string* first_error = nullptr);

 private:
  static void OnPublishError(jsCtx* js, jsPubAckErr* error, void* closure);

  Options options_;
  natsConnection* connection_ = nullptr;
  jsCtx* js_ = nullptr;
  struct Failures;
  std::unique_ptr<Failures> failures_;
};

// Owns a natsMsg.
struct MsgDeleter {
  void operator()(natsMsg* message) const { natsMsg_Destroy(message); }
};
using MsgPtr = std::unique_ptr<natsMsg, MsgDeleter>;

// Appends `messages` (taken: destroyed or handed to the library; each carries its Nats-Msg-Id)
// to `stream` after its message `last_sequence`, published asynchronously and then waited for.
// The first carries the expected last sequence (0 for an empty stream, sent as the header too,
// since the library omits a zero expectation), every later one the expected sequence and the
// expected last message id of its predecessor in the run: once one append is refused, no later
// one can be stored (a foreign message that took its place does not satisfy the next one's
// expectation). Answers whether every append was confirmed; otherwise `error` says why and the
// stream's end must be re-read.
bool AppendChain(JetStreamConnection& nats, std::vector<natsMsg*>& messages,
                 std::uint64_t last_sequence, std::string* error);

}  // namespace shopcqrs::infra::nats
