#include "devstack/process.h"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <utility>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

extern char** environ;

namespace shopcqrs::devstack {
namespace {

std::string ErrnoText(int err) { return std::strerror(err); }

// Closes a file descriptor on scope exit.
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() { Reset(); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int Get() const { return fd_; }
  int Release() { return std::exchange(fd_, -1); }
  void Reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_;
};

// What the child reports through the close-on-exec pipe when it fails before exec.
struct ChildFailure {
  int stage;
  int err;
};

constexpr const char* kStageNames[] = {
    "redirect stdio", "change directory",        "setgroups",    "setgid", "setuid", "exec",
    "setpgid",        "set parent-death signal", "set niceness",
};
enum Stage { kStdio, kChdir, kSetgroups, kSetgid, kSetuid, kExec, kSetpgid, kPdeathsig, kNice };

[[noreturn]] void ChildFail(int fd, Stage stage) {
  ChildFailure failure{stage, errno};
  ssize_t ignored = ::write(fd, &failure, sizeof failure);
  (void)ignored;
  ::_exit(127);
}

}  // namespace

UserInfo LookupUser(const std::string& name) {
  long size = ::sysconf(_SC_GETPW_R_SIZE_MAX);
  std::vector<char> buffer(size > 0 ? static_cast<std::size_t>(size) : 16384);
  passwd pw{};
  passwd* result = nullptr;
  int rc;
  while ((rc = ::getpwnam_r(name.c_str(), &pw, buffer.data(), buffer.size(), &result)) == ERANGE) {
    buffer.resize(buffer.size() * 2);
  }
  if (rc != 0 || result == nullptr) {
    throw std::runtime_error(
        fmt::format("unknown system user '{}'{}", name, rc != 0 ? ": " + ErrnoText(rc) : ""));
  }
  UserInfo info;
  info.uid = pw.pw_uid;
  info.gid = pw.pw_gid;
  info.name = pw.pw_name;
  info.home = pw.pw_dir ? pw.pw_dir : "/";
  int count = 32;
  info.groups.resize(static_cast<std::size_t>(count));
  while (::getgrouplist(name.c_str(), info.gid, info.groups.data(), &count) < 0) {
    info.groups.resize(static_cast<std::size_t>(count) + 32);
    count = static_cast<int>(info.groups.size());
  }
  info.groups.resize(static_cast<std::size_t>(count));
  return info;
}

std::string ExitStatus::Describe() const {
  if (signal != 0) {
    const char* descr = ::sigdescr_np(signal);
    return fmt::format("killed by signal {} ({})", signal, descr ? descr : "unknown");
  }
  return fmt::format("exit code {}", exit_code);
}

std::optional<std::filesystem::path> FindExecutable(const std::string& name) {
  if (name.empty()) return std::nullopt;
  if (name.find('/') != std::string::npos) {
    if (::access(name.c_str(), X_OK) == 0) return std::filesystem::path(name);
    return std::nullopt;
  }
  const char* path_env = std::getenv("PATH");
  std::string path = path_env && *path_env ? path_env : "/usr/local/bin:/usr/bin:/bin";
  std::size_t start = 0;
  while (start <= path.size()) {
    std::size_t end = path.find(':', start);
    if (end == std::string::npos) end = path.size();
    std::string dir = path.substr(start, end - start);
    if (dir.empty()) dir = ".";
    std::filesystem::path candidate = std::filesystem::path(dir) / name;
    struct stat st {};
    if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
        ::access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
    start = end + 1;
  }
  return std::nullopt;
}

ChildProcess::~ChildProcess() {
  bool running;
  {
    std::lock_guard lock(mutex_);
    running = running_;
  }
  if (running) {
    spdlog::warn("killing child process {} ({}) still running at destruction", Pid(),
                 CommandLine());
    KillGroup(SIGKILL);
    Wait();
  }
  std::lock_guard lock(mutex_);
  CloseOutputLocked(ChildStream::kStdout);
  CloseOutputLocked(ChildStream::kStderr);
}

std::string ChildProcess::ReadOutput(ChildStream stream) {
  std::lock_guard lock(mutex_);
  const int fd = pipes_[static_cast<int>(stream)];
  std::string out;
  if (fd < 0) return out;
  char buffer[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n > 0) {
      out.append(buffer, static_cast<std::size_t>(n));
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      return out;  // the end (0), or nothing more for now (EAGAIN)
    }
  }
}

void ChildProcess::CloseOutput(ChildStream stream) {
  std::lock_guard lock(mutex_);
  CloseOutputLocked(stream);
}

void ChildProcess::CloseOutputLocked(ChildStream stream) {
  int& fd = pipes_[static_cast<int>(stream)];
  if (fd >= 0) ::close(fd);
  fd = -1;
}

std::string ChildProcess::CommandLine() const {
  std::string out;
  for (const auto& arg : options_.argv) {
    if (!out.empty()) out += ' ';
    out += arg;
  }
  return out;
}

pid_t ChildProcess::Pid() const {
  std::lock_guard lock(mutex_);
  return pid_;
}

void ChildProcess::Start(ChildProcessOptions options) {
  std::lock_guard lock(mutex_);
  if (running_) {
    ReapLocked(false);
    if (running_) {
      throw std::runtime_error(fmt::format("child process {} is already running", pid_));
    }
  }
  if (options.argv.empty()) throw std::runtime_error("ChildProcess::Start: empty argv");

  auto program = FindExecutable(options.argv[0]);
  if (!program) {
    throw std::runtime_error(
        fmt::format("program not found or not executable: {}", options.argv[0]));
  }

  std::optional<UserInfo> user;
  if (!options.run_as_user.empty()) {
    UserInfo info = LookupUser(options.run_as_user);
    if (info.uid != ::geteuid()) {
      if (::geteuid() != 0) {
        throw std::runtime_error(fmt::format("cannot run {} as user '{}': not running as root",
                                             options.argv[0], options.run_as_user));
      }
      user = std::move(info);
    }
  }

  Fd null_fd(::open("/dev/null", O_RDWR | O_CLOEXEC));
  if (null_fd.Get() < 0) {
    throw std::runtime_error(fmt::format("cannot open /dev/null: {}", ErrnoText(errno)));
  }
  // The files and pipes the child's stdout and stderr are to become (-1: keep the parent's).
  Fd log_fd, file_fds[2], pipe_read[2], pipe_write[2];
  auto open_file = [&](Fd& fd, const std::filesystem::path& path, bool truncate) {
    const int flags = O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | (truncate ? O_TRUNC : 0);
    fd.Reset(::open(path.c_str(), flags, 0640));
    if (fd.Get() < 0) {
      throw std::runtime_error(
          fmt::format("cannot open log file {}: {}", path.string(), ErrnoText(errno)));
    }
    if (user && ::fchown(fd.Get(), user->uid, user->gid) != 0) {
      throw std::runtime_error(fmt::format("cannot chown log file {} to {}: {}", path.string(),
                                           user->name, ErrnoText(errno)));
    }
    return fd.Get();
  };
  if (!options.log_file.empty()) open_file(log_fd, options.log_file, false);
  int child_fds[2] = {-1, -1};
  bool stderr_as_stdout = false;
  for (const int i : {0, 1}) {
    const ChildOutput& output = i == 0 ? options.stdout_to : options.stderr_to;
    switch (output.kind) {
      case ChildOutput::Kind::kDefault:
        child_fds[i] = log_fd.Get();
        break;
      case ChildOutput::Kind::kInherit:
        break;
      case ChildOutput::Kind::kNull:
        child_fds[i] = null_fd.Get();
        break;
      case ChildOutput::Kind::kFile:
        if (output.path.empty()) throw std::runtime_error("ChildOutput: a file without a path");
        child_fds[i] = open_file(file_fds[i], output.path, output.truncate);
        break;
      case ChildOutput::Kind::kPipe: {
        int fds[2];
        if (::pipe2(fds, O_CLOEXEC) != 0) {
          throw std::runtime_error(fmt::format("pipe2 failed: {}", ErrnoText(errno)));
        }
        pipe_read[i].Reset(fds[0]);
        pipe_write[i].Reset(fds[1]);
        // The parent only ever reads what is there (ReadOutput).
        ::fcntl(fds[0], F_SETFL, ::fcntl(fds[0], F_GETFL) | O_NONBLOCK);
        child_fds[i] = fds[1];
        break;
      }
      case ChildOutput::Kind::kSameAsStdout:
        if (i == 0) throw std::runtime_error("ChildOutput: stdout cannot be the same as stdout");
        stderr_as_stdout = true;
        break;
    }
  }

  // Everything the child needs is prepared here: between fork and exec only
  // async-signal-safe calls are allowed (the parent may be multi-threaded).
  std::vector<std::pair<std::string, std::string>> overrides = options.env;
  if (user) {
    auto add_default = [&](const char* key, const std::string& value) {
      bool given = std::any_of(overrides.begin(), overrides.end(),
                               [&](const auto& kv) { return kv.first == key; });
      if (!given) overrides.emplace_back(key, value);
    };
    add_default("HOME", user->home);
    add_default("USER", user->name);
    add_default("LOGNAME", user->name);
  }
  std::vector<std::string> env_strings;
  for (char** e = environ; e && *e; ++e) {
    std::string_view entry(*e);
    std::string_view key = entry.substr(0, entry.find('='));
    bool overridden = std::any_of(overrides.begin(), overrides.end(),
                                  [&](const auto& kv) { return kv.first == key; });
    if (!overridden) env_strings.emplace_back(entry);
  }
  for (const auto& [key, value] : overrides) env_strings.push_back(key + "=" + value);
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);

  std::vector<std::string> argv_strings = options.argv;
  std::vector<char*> argv;
  for (auto& s : argv_strings) argv.push_back(s.data());
  argv.push_back(nullptr);

  std::string program_path = program->string();
  std::string working_dir = options.working_dir.string();

  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    throw std::runtime_error(fmt::format("pipe2 failed: {}", ErrnoText(errno)));
  }
  Fd err_read(pipe_fds[0]);
  Fd err_write(pipe_fds[1]);

  const pid_t parent_pid = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) {
    throw std::runtime_error(fmt::format("fork failed: {}", ErrnoText(errno)));
  }
  if (pid == 0) {
    // Child.
    const int wfd = err_write.Get();
    if (options.new_process_group && ::setpgid(0, 0) != 0) ChildFail(wfd, kSetpgid);
    // Signal state survives exec for ignored signals and the mask: start clean.
    sigset_t all;
    sigemptyset(&all);
    ::sigprocmask(SIG_SETMASK, &all, nullptr);
    for (int sig : {SIGPIPE, SIGINT, SIGTERM, SIGQUIT, SIGHUP, SIGCHLD, SIGUSR1, SIGUSR2}) {
      ::signal(sig, SIG_DFL);
    }
    if (::dup2(null_fd.Get(), STDIN_FILENO) < 0) ChildFail(wfd, kStdio);
    if (child_fds[0] >= 0 && ::dup2(child_fds[0], STDOUT_FILENO) < 0) ChildFail(wfd, kStdio);
    if (stderr_as_stdout) {
      if (::dup2(STDOUT_FILENO, STDERR_FILENO) < 0) ChildFail(wfd, kStdio);
    } else if (child_fds[1] >= 0 && ::dup2(child_fds[1], STDERR_FILENO) < 0) {
      ChildFail(wfd, kStdio);
    }
    if (!working_dir.empty() && ::chdir(working_dir.c_str()) != 0) ChildFail(wfd, kChdir);
    if (options.nice != 0) {
      errno = 0;
      const int current = ::getpriority(PRIO_PROCESS, 0);
      if (errno != 0 || ::setpriority(PRIO_PROCESS, 0, current + options.nice) != 0) {
        ChildFail(wfd, kNice);
      }
    }
    if (user) {
      if (::setgroups(user->groups.size(), user->groups.data()) != 0) ChildFail(wfd, kSetgroups);
      if (::setgid(user->gid) != 0) ChildFail(wfd, kSetgid);
      if (::setuid(user->uid) != 0) ChildFail(wfd, kSetuid);
    }
    // After the credential change, which clears the parent-death signal.
    if (options.parent_death_signal != 0) {
      if (::prctl(PR_SET_PDEATHSIG, options.parent_death_signal) != 0) {
        ChildFail(wfd, kPdeathsig);
      }
      if (::getppid() != parent_pid) ::_exit(127);  // the parent is already gone
    }
    ::execve(program_path.c_str(), argv.data(), envp.data());
    ChildFail(wfd, kExec);
  }

  // Parent.
  err_write.Reset();
  ChildFailure failure{};
  ssize_t n;
  do {
    n = ::read(err_read.Get(), &failure, sizeof failure);
  } while (n < 0 && errno == EINTR);
  if (n == static_cast<ssize_t>(sizeof failure)) {
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    throw std::runtime_error(
        fmt::format("cannot start {}: {} failed in the child: {}", program_path,
                    failure.stage >= 0 && failure.stage < static_cast<int>(std::size(kStageNames))
                        ? kStageNames[failure.stage]
                        : "setup",
                    ErrnoText(failure.err)));
  }

  options_ = std::move(options);
  pid_ = pid;
  running_ = true;
  exit_.reset();
  for (const int i : {0, 1}) {
    CloseOutputLocked(static_cast<ChildStream>(i));
    pipes_[i] = pipe_read[i].Release();
  }
  spdlog::debug("started child process {}: {}", pid_, CommandLine());
}

bool ChildProcess::ReapLocked(bool block) {
  if (!running_) return true;
  for (;;) {
    int status = 0;
    pid_t r = ::waitpid(pid_, &status, block ? 0 : WNOHANG);
    if (r == pid_) {
      ExitStatus exit;
      if (WIFSIGNALED(status)) {
        exit.signal = WTERMSIG(status);
      } else if (WIFEXITED(status)) {
        exit.exit_code = WEXITSTATUS(status);
      }
      exit_ = exit;
      running_ = false;
      return true;
    }
    if (r == 0) return false;
    if (errno == EINTR) continue;
    // ECHILD: somebody else reaped it (e.g. SIGCHLD ignored). It is gone either way.
    exit_ = ExitStatus{};
    running_ = false;
    return true;
  }
}

bool ChildProcess::IsRunning() {
  std::lock_guard lock(mutex_);
  ReapLocked(false);
  return running_;
}

bool ChildProcess::Kill(int sig) {
  std::lock_guard lock(mutex_);
  if (!running_) return false;
  // A zombie still owns its pid until reaped, so this can never hit a reused pid.
  return ::kill(pid_, sig) == 0;
}

bool ChildProcess::KillGroup(int sig) {
  std::lock_guard lock(mutex_);
  if (!running_) return false;
  // While the leader is unreaped its pid cannot be reused, nor can its group id.
  return ::kill(options_.new_process_group ? -pid_ : pid_, sig) == 0;
}

std::optional<ExitStatus> ChildProcess::Wait(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  auto pause = std::chrono::milliseconds(1);
  for (;;) {
    {
      std::lock_guard lock(mutex_);
      if (pid_ == 0) return std::nullopt;
      if (ReapLocked(false)) return exit_;
    }
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) return std::nullopt;
    std::this_thread::sleep_for(
        std::min<std::chrono::steady_clock::duration>(pause, deadline - now));
    pause = std::min(pause * 2, std::chrono::milliseconds(50));
  }
}

std::optional<ExitStatus> ChildProcess::Wait() {
  for (;;) {
    {
      std::lock_guard lock(mutex_);
      if (pid_ == 0) return std::nullopt;
    }
    if (auto status = Wait(std::chrono::hours(1))) return status;
  }
}

std::optional<ExitStatus> ChildProcess::LastExit() const {
  std::lock_guard lock(mutex_);
  return exit_;
}

std::optional<ExitStatus> ChildProcess::Stop(int sig, std::chrono::milliseconds grace) {
  if (Kill(sig)) {
    if (auto status = Wait(grace)) return status;
    spdlog::warn("child process {} ({}) did not exit within {} ms of signal {}; killing it", Pid(),
                 CommandLine(), grace.count(), sig);
    KillGroup(SIGKILL);
  }
  return Wait();
}

ExitStatus RunToCompletion(ChildProcessOptions options, std::chrono::milliseconds timeout) {
  ChildProcess process;
  process.Start(std::move(options));
  if (auto status = process.Wait(timeout)) return *status;
  process.KillGroup(SIGKILL);
  process.Wait();
  throw std::runtime_error(
      fmt::format("{} did not finish within {} s", process.CommandLine(), timeout.count() / 1000));
}

std::string TailFile(const std::filesystem::path& file, std::size_t max_lines,
                     std::uintmax_t from) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return {};
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  constexpr std::streamoff kMaxBytes = 64 * 1024;
  std::streamoff start = std::max<std::streamoff>(static_cast<std::streamoff>(from), 0);
  if (start > size) start = size;
  if (size - start > kMaxBytes) start = size - kMaxBytes;
  in.seekg(start);
  std::string text(static_cast<std::size_t>(size - start), '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<std::size_t>(in.gcount()));
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  std::size_t pos = text.size();
  std::size_t lines = 0;
  while (pos > 0) {
    std::size_t nl = text.rfind('\n', pos - 1);
    if (nl == std::string::npos) {
      pos = 0;
      break;
    }
    if (++lines == max_lines) {
      pos = nl + 1;
      break;
    }
    pos = nl;
  }
  return text.substr(pos);
}

namespace {

// The fields after "pid (comm) " of /proc/<pid>/stat (comm may contain spaces and parentheses).
// Read with read(2), not a stream: reading the file of a process that has just exited fails
// with ESRCH, which libstdc++'s filebuf throws out of an istreambuf_iterator.
std::optional<std::string> StatFields(pid_t pid) {
  const int fd = ::open(fmt::format("/proc/{}/stat", pid).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  std::string content;
  char buffer[1024];
  for (;;) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n > 0) {
      content.append(buffer, static_cast<std::size_t>(n));
    } else if (n == 0 || errno != EINTR) {
      break;
    }
  }
  ::close(fd);
  const auto close = content.rfind(')');
  if (close == std::string::npos || close + 2 >= content.size()) return std::nullopt;
  return content.substr(close + 2);
}

std::optional<pid_t> ParsePid(std::string_view text) {
  pid_t value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || ptr != text.data() + text.size() || value <= 0) return std::nullopt;
  return value;
}

}  // namespace

bool ProcessAlive(pid_t pid) {
  if (pid <= 0) return false;
  if (::kill(pid, 0) != 0 && errno == ESRCH) return false;
  const auto fields = StatFields(pid);
  if (!fields) return false;  // gone between the two checks
  return !fields->starts_with('Z');
}

std::optional<pid_t> ParentOf(pid_t pid) {
  // "<state> <ppid> ..."
  const auto fields = StatFields(pid);
  if (!fields) return std::nullopt;
  std::istringstream in(*fields);
  std::string state;
  pid_t ppid = 0;
  if (!(in >> state >> ppid)) return std::nullopt;
  return ppid;
}

std::vector<pid_t> ProcessesIn(const std::filesystem::path& cwd, std::string_view exe_name) {
  std::vector<pid_t> pids;
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return pids;
  const pid_t self = ::getpid();
  while (dirent* entry = ::readdir(proc)) {
    const auto pid = ParsePid(entry->d_name);
    if (!pid || *pid == self) continue;
    const std::filesystem::path base = std::filesystem::path("/proc") / entry->d_name;
    std::error_code ec;
    // A zombie has no cwd any more, so it is skipped here.
    const std::filesystem::path dir = std::filesystem::read_symlink(base / "cwd", ec);
    if (ec || dir != cwd) continue;
    std::string exe = std::filesystem::read_symlink(base / "exe", ec).filename().string();
    if (ec) continue;
    if (constexpr std::string_view kDeleted = " (deleted)"; exe.ends_with(kDeleted)) {
      exe.resize(exe.size() - kDeleted.size());
    }
    if (exe == exe_name) pids.push_back(*pid);
  }
  ::closedir(proc);
  return pids;
}

}  // namespace shopcqrs::devstack
