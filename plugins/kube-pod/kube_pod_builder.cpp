#include "kube_pod_builder.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#include "envd/host.hpp"
#include "envd/process.hpp"
#include "kube_address.hpp"
#include "kubectl.hpp"
#include "pod_choice.hpp"

namespace envd::plugins {

namespace json = boost::json;
using Clock = std::chrono::steady_clock;
using kube::KubeTarget;

// The `kubectl exec` children of this process's dials. Each has a watcher
// thread that keeps its stderr and reaps it when it ends (when the core closes
// its end of the socket, kubectl's stdin ends, and so does the exec); the
// object joins every watcher, stopping children still running, when the
// driver goes at process exit. So no child is left unreaped and no thread
// unowned.
struct KubePodBuilder::Execs {
  struct Child {
    pid_t pid = -1;
    std::thread watcher;
    std::mutex mu;
    std::condition_variable ended;
    bool done = false;   // guarded by mu
    int exit_code = -1;  // guarded by mu
    std::string err;     // guarded by mu
  };

  std::mutex mu;
  std::vector<std::shared_ptr<Child>> children;  // guarded by mu
  std::shared_ptr<Child> last;                   // guarded by mu

  // Each child leads its own process group: a kubectl that is a wrapper
  // script (an asdf shim) runs the real one as its child, which holds the
  // stderr pipe the watcher reads to its end. The whole group is asked to
  // stop, and killed when it has not within a second.
  ~Execs() {
    std::lock_guard lock(mu);
    for (auto& child : children) {
      {
        std::unique_lock child_lock(child->mu);
        if (!child->done) {
          ::kill(-child->pid, SIGTERM);
          if (!child->ended.wait_for(child_lock, std::chrono::seconds(1),
                                     [&] { return child->done; })) {
            ::kill(-child->pid, SIGKILL);
          }
        }
      }
      if (child->watcher.joinable()) child->watcher.join();
    }
  }

  // Starts `argv` with stdin and stdout on one end of a socketpair and
  // returns the other end (close-on-exec).
  Result<int> start(const kube::Kubectl& kubectl, const std::vector<std::string>& argv) {
    int io[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, io) != 0) {
      return Error(Errc::internal,
                   std::string("cannot create a socketpair: ") + std::strerror(errno));
    }
    int err[2];
    if (::pipe2(err, O_CLOEXEC) != 0) {
      int saved = errno;
      ::close(io[0]);
      ::close(io[1]);
      return Error(Errc::internal, std::string("cannot create a pipe: ") + std::strerror(saved));
    }
    sdk::ProcessOptions options;
    options.argv = argv;
    options.new_process_group = true;
    auto pid = sdk::spawn_process(options, io[1], io[1], err[1]);
    ::close(io[1]);
    ::close(err[1]);
    if (!pid) {
      ::close(io[0]);
      ::close(err[0]);
      if (pid.error().code() == Errc::not_found) return kubectl.missing();
      return pid.error();
    }
    auto child = std::make_shared<Child>();
    child->pid = *pid;
    child->watcher = std::thread([child, fd = err[0]] {
      char buf[1024];
      std::string text;
      for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        if (text.size() < 65536) text.append(buf, static_cast<size_t>(n));
      }
      ::close(fd);
      auto code = sdk::wait_process(child->pid);
      std::lock_guard lock(child->mu);
      child->err = std::move(text);
      child->exit_code = code ? *code : -1;
      child->done = true;
      child->ended.notify_all();
    });
    std::lock_guard lock(mu);
    reap_finished();
    children.push_back(child);
    last = child;
    return io[0];
  }

  // Why the last exec failed, waiting up to `wait` for it to end: kubectl's
  // reason, or "" if it still runs or succeeded.
  std::string last_failure(std::chrono::milliseconds wait) {
    std::shared_ptr<Child> child;
    {
      std::lock_guard lock(mu);
      child = last;
    }
    if (!child) return {};
    std::unique_lock lock(child->mu);
    child->ended.wait_for(lock, wait, [&] { return child->done; });
    if (!child->done || child->exit_code == 0) return {};
    auto error = kube::kubectl_error(child->err, child->exit_code);
    return "kubectl exec ended: " + error.message().substr(std::strlen("kubectl: "));
  }

 private:
  // Joins the watchers of children that ended. Called with mu held.
  void reap_finished() {
    for (auto it = children.begin(); it != children.end();) {
      bool done = false;
      {
        std::lock_guard child_lock((*it)->mu);
        done = (*it)->done;
      }
      if (done && *it != last) {
        (*it)->watcher.join();
        it = children.erase(it);
      } else {
        ++it;
      }
    }
  }
};

namespace {

std::chrono::milliseconds left(Clock::time_point end) {
  // Rounded up: a 10 s deadline reads "10000 ms" in messages, not "9999 ms".
  return std::max(std::chrono::ceil<std::chrono::milliseconds>(end - Clock::now()),
                  std::chrono::milliseconds(1));
}

std::string in_namespace(const std::string& ns) {
  return ns.empty() ? std::string() : " in namespace " + ns;
}

Result<KubeTarget> target_of(const sdk::Request& request) {
  auto target = kube::parse_address(request.address);
  if (!target) return target.error();
  return target;
}

// A container= the pod does not have fails before kubectl exec would, with
// the names it does have.
Status check_container(const KubeTarget& target, const kube::PodFacts& pod) {
  if (target.container.empty()) return {};
  std::string names;
  for (const auto& c : pod.containers) {
    if (c == target.container) return {};
    names += (names.empty() ? "" : ", ") + c;
  }
  return Error(Errc::not_found, "pod " + pod.name + in_namespace(pod.namespace_) +
                                    " has no container '" + target.container +
                                    "' (it has: " + names + ")");
}

// The pod a dial goes to (and status reports).
Result<kube::PodFacts> resolve_pod(const KubeTarget& target, const kube::Kubectl& kubectl,
                                   const std::string& context, Clock::time_point end) {
  if (target.kind == KubeTarget::Kind::pod) {
    auto json = kubectl.get_json({"pod", "-o", "json", "--", target.name}, left(end));
    if (!json) return json.error();
    auto pod = kube::parse_pod(*json);
    if (!pod) return pod.error();
    if (pod->phase != "Running" || pod->deleting) {
      return Error(Errc::unavailable, pod->why_unusable());
    }
    if (auto st = check_container(target, *pod); !st) return st.error();
    return pod;
  }
  std::string selector = target.selector;
  const std::string what = target.describe() + in_namespace(target.namespace_);
  if (target.kind != KubeTarget::Kind::selector) {
    const char* resource =
        target.kind == KubeTarget::Kind::deployment ? "deployment" : "statefulset";
    auto json = kubectl.get_json({resource, "-o", "json", "--", target.name}, left(end));
    if (!json) return json.error();
    auto workload_selector = kube::parse_workload_selector(*json);
    if (!workload_selector) return workload_selector.error();
    if (workload_selector->empty()) {
      return Error(Errc::invalid_argument, what + " has no spec.selector to find its pods by");
    }
    selector = *workload_selector;
  }
  auto json = kubectl.get_json({"pods", "--selector=" + selector, "-o", "json"}, left(end));
  if (!json) return json.error();
  auto pods = kube::parse_pod_list(*json);
  if (!pods) return pods.error();
  auto chosen = kube::choose_pod(*pods, context, what);
  if (!chosen) return chosen.error();
  // A workload's pods share their template, so the chosen one speaks for
  // all (a selector's may not, and only the chosen one is dialled).
  if (auto st = check_container(target, *chosen); !st) return st.error();
  return chosen;
}

Error not_managed(std::string_view verb) {
  return Error(Errc::unsupported, "nothing to " + std::string(verb) +
                                      ": it uses buildkitd pods that you deploy (deploy buildkitd "
                                      "with kubectl: see examples/kubernetes and "
                                      "docs/kubernetes.md)");
}

}  // namespace

KubePodBuilder::KubePodBuilder() : execs_(std::make_unique<Execs>()) {}
KubePodBuilder::~KubePodBuilder() = default;

Result<std::string> KubePodBuilder::normalize_address(const std::string& address) const {
  auto target = kube::parse_address(address);
  if (!target) return target.error();
  return target->to_string();
}

Result<sdk::Transport> KubePodBuilder::dial(const sdk::Request& request) {
  const auto end = Clock::now() + request.timeout;
  auto target = target_of(request);
  if (!target) return target.error();
  kube::Kubectl kubectl(*target);
  auto pod = resolve_pod(*target, kubectl, request.context, end);
  if (!pod) return pod.error();
  sdk::report_progress("connecting to buildkitd in pod " + pod->name +
                       in_namespace(pod->namespace_));
  auto fd = execs_->start(kubectl, kubectl.exec_argv(pod->name));
  if (!fd) return fd.error();
  sdk::Transport transport;
  transport.kind = sdk::Transport::Kind::fd;
  transport.fd = *fd;
  transport.description = "kube-pod://" + target->to_string();
  return transport;
}

Result<std::string> KubePodBuilder::status(const sdk::Request& request) {
  const auto end = Clock::now() + request.timeout;
  auto target = target_of(request);
  if (!target) return target.error();
  kube::Kubectl kubectl(*target);
  // After a dial of this process whose kubectl exec already ended, its
  // reason is what the core asks this for (it appends dial_error): known
  // now, it is kept even when the pod lookup below does not fit in what is
  // left of a short deadline.
  std::string failure = execs_->last_failure(std::chrono::milliseconds(0));
  json::object out;
  auto pod = resolve_pod(*target, kubectl, request.context, end);
  if (pod) {
    out["state"] = "running";
    out["detail"] = "pod " + pod->name + in_namespace(pod->namespace_) + " is " + pod->phase;
    out["pod"] = pod->name;
    out["namespace"] = pod->namespace_;
    out["phase"] = pod->phase;
  } else if (failure.empty()) {
    // envd starts no pod here: one it cannot find or use (kubectl missing,
    // an unknown kube context, no such workload, no Ready pod) is the
    // answer's error, not a state to bootstrap from ("missing" made
    // `envd builder status` exit 0, passing a CI gate on a broken setup).
    return pod.error();
  } else {
    out["state"] = "unknown";
    out["detail"] = pod.error().message();
  }
  // A dial's kubectl that still runs may end within the request's time: the
  // core asks this after its own deadline.
  if (failure.empty()) {
    failure = execs_->last_failure(
        std::min<std::chrono::milliseconds>(std::chrono::seconds(2), left(end)));
  }
  if (!failure.empty()) out["dial_error"] = failure;
  return json::serialize(out);
}

Result<std::string> KubePodBuilder::bootstrap(const sdk::Request& /*request*/) {
  return not_managed("bootstrap");
}
Status KubePodBuilder::stop(const sdk::Request& /*request*/) { return not_managed("stop"); }
Status KubePodBuilder::remove(const sdk::Request& /*request*/) { return not_managed("remove"); }

}  // namespace envd::plugins
