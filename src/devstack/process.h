#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace shopcqrs::devstack {

// A system user as the process spawner needs it (uid, gid, supplementary groups).
struct UserInfo {
  uid_t uid = 0;
  gid_t gid = 0;
  std::string name;
  std::string home;
  std::vector<gid_t> groups;
};
// The one user lookup (getpwnam_r, getgrouplist); throws std::runtime_error for an unknown user.
UserInfo LookupUser(const std::string& name);

// How a child process ended.
struct ExitStatus {
  int exit_code = -1;  // valid when signal == 0
  int signal = 0;      // the terminating signal, 0 if the process exited normally

  bool Success() const { return signal == 0 && exit_code == 0; }
  std::string Describe() const;  // "exit code 1", "killed by signal 9 (Killed)"
};

// Where one output stream of a child (stdout or stderr) goes.
struct ChildOutput {
  enum class Kind {
    kDefault,       // ChildProcessOptions::log_file when set, else the parent's stream
    kInherit,       // the parent's stream
    kNull,          // /dev/null
    kFile,          // `path`, appended to (or truncated first, with `truncate`)
    kPipe,          // a pipe whose reading end the parent holds (ChildProcess::ReadOutput)
    kSameAsStdout,  // stderr only: wherever stdout goes (2>&1)
  };
  Kind kind = Kind::kDefault;
  std::filesystem::path path;  // kFile
  bool truncate = false;       // kFile: empty it when the child starts (writes still append)

  static ChildOutput Inherit() { return {.kind = Kind::kInherit}; }
  static ChildOutput Null() { return {.kind = Kind::kNull}; }
  static ChildOutput AppendTo(std::filesystem::path file) {
    return {.kind = Kind::kFile, .path = std::move(file)};
  }
  static ChildOutput TruncateTo(std::filesystem::path file) {
    return {.kind = Kind::kFile, .path = std::move(file), .truncate = true};
  }
  static ChildOutput Pipe() { return {.kind = Kind::kPipe}; }
  static ChildOutput SameAsStdout() { return {.kind = Kind::kSameAsStdout}; }
};

// The two output streams of a child.
enum class ChildStream { kStdout, kStderr };

struct ChildProcessOptions {
  // argv[0] is the program: an absolute/relative path, or a bare name looked up in PATH.
  std::vector<std::string> argv;
  // Run as this system user (setgid/setgroups/setuid in the child before exec). Needs root;
  // empty or equal to the current user means "do not switch".
  std::string run_as_user;
  // stdout and stderr go (appended) to this file; empty means inherit the parent's. Each of
  // them can be sent elsewhere with stdout_to / stderr_to. Files (this one and kFile outputs)
  // are chowned to run_as_user when it is set. stdin is always /dev/null.
  std::filesystem::path log_file;
  ChildOutput stdout_to;
  ChildOutput stderr_to;
  // Extra environment variables (override inherited ones). When switching user, HOME, USER
  // and LOGNAME are set to that user's unless given here.
  std::vector<std::pair<std::string, std::string>> env;
  // Working directory of the child; empty means the parent's.
  std::filesystem::path working_dir;
  // Put the child in its own process group so terminal signals (Ctrl-C) sent to our group
  // do not reach it; the owner decides how to stop it.
  bool new_process_group = true;
  // Signal the kernel sends to the child when the *thread* that spawned it exits (Linux
  // PR_SET_PDEATHSIG), e.g. SIGKILL. 0 disables. Only use it when the spawning thread lives
  // as long as the child should (typically the main thread). It is set after the user
  // switch (which would clear it) and survives exec unless the program is setuid.
  int parent_death_signal = 0;
  // Added to the child's niceness before exec (setpriority); > 0 lowers its CPU priority, so a
  // server that can wait (a read store) yields the CPU to one that must not (the write store).
  int nice = 0;
};

// One child process: fork + exec with stdio redirected. Not copyable; movable only before
// use from several threads. All member functions are thread-safe.
// The destructor kills (SIGKILL, to its process group) and reaps a child that is still
// running; owners that want a graceful stop call Stop() first.
class ChildProcess {
 public:
  ChildProcess() = default;
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // Starts the child. Throws std::runtime_error if it is already running, the user is
  // unknown, an output file cannot be opened, or exec fails (the error names the program).
  // The pipes of the previous run, if any, are closed.
  void Start(ChildProcessOptions options);

  // For an output sent to a pipe (ChildOutput::Pipe()): what the child has written and nobody
  // has read yet, without blocking ("" when there is nothing, or the stream is no pipe). The
  // reading end stays open after the child has exited, until the next Start, CloseOutput or
  // the destructor, so its last output can still be read.
  std::string ReadOutput(ChildStream stream);
  // Closes the reading end of the pipe of `stream`: the child's next write to it fails with
  // EPIPE (SIGPIPE, unless the child ignores it). No-op for a stream that is no open pipe.
  void CloseOutput(ChildStream stream);

  // Whether the child has been started and has not been reaped yet (reaps a zombie).
  bool IsRunning();
  // 0 when never started.
  pid_t Pid() const;
  // Sends a signal if the child is running. Returns false if it was not.
  bool Kill(int sig);
  // Sends a signal to the child's whole process group (needs new_process_group, otherwise
  // it is Kill) while the child itself has not been reaped yet.
  bool KillGroup(int sig);
  // Waits for the child to exit; nullopt on timeout. Returns the stored status if it has
  // already been reaped, nullopt if it was never started.
  std::optional<ExitStatus> Wait(std::chrono::milliseconds timeout);
  // Waits without a timeout.
  std::optional<ExitStatus> Wait();
  // The status of the last run once reaped.
  std::optional<ExitStatus> LastExit() const;
  // Graceful stop: sends `sig`, waits up to `grace`, then SIGKILL (to the process group, so
  // no grandchild survives) and waits. Returns the exit status (nullopt if never started).
  std::optional<ExitStatus> Stop(int sig, std::chrono::milliseconds grace);

  const ChildProcessOptions& Options() const { return options_; }
  // argv joined with spaces, for log messages.
  std::string CommandLine() const;

 private:
  bool ReapLocked(bool block);
  void CloseOutputLocked(ChildStream stream);

  mutable std::mutex mutex_;
  ChildProcessOptions options_;
  int pipes_[2] = {-1, -1};  // the reading ends of stdout and stderr when they are pipes
  pid_t pid_ = 0;
  bool running_ = false;
  std::optional<ExitStatus> exit_;
};

// Resolves a program name against PATH (a name containing '/' is returned as is).
// nullopt if not found or not executable.
std::optional<std::filesystem::path> FindExecutable(const std::string& name);

// Runs a program to completion and returns its exit status. Output goes where the options
// say (options.log_file, stdout_to, stderr_to; a pipe is read by nobody: do not use one).
// Throws std::runtime_error on timeout (after killing the child) or start failure.
ExitStatus RunToCompletion(ChildProcessOptions options, std::chrono::milliseconds timeout);

// Last `max_lines` lines of a text file starting at byte `from` (empty if unreadable).
std::string TailFile(const std::filesystem::path& file, std::size_t max_lines,
                     std::uintmax_t from = 0);

// Whether `pid` names a live process. A zombie (exited, not reaped yet) counts as gone: it holds
// no memory, ports or files any more.
bool ProcessAlive(pid_t pid);
// The parent of `pid`; nullopt if it is gone.
std::optional<pid_t> ParentOf(pid_t pid);
// Live processes, other than this one, whose working directory is `cwd` (compared as given:
// pass the canonical path, which is what /proc shows) and whose executable's file name is
// `exe_name` (an executable replaced on disk since counts as well). Processes whose working
// directory cannot be read (another user's, unless we are root) are not found.
std::vector<pid_t> ProcessesIn(const std::filesystem::path& cwd, std::string_view exe_name);

}  // namespace shopcqrs::devstack
