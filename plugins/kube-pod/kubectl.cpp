#include "kubectl.hpp"

#include <cctype>
#include <cstdlib>

#include "envd/process.hpp"
#include "envd/text.hpp"

namespace envd::plugins::kube {
namespace {

// client-go's log lines: "E1202 12:00:00.000000   1234 file.go:12] ...".
bool is_klog_line(const std::string& line) {
  return line.size() > 5 && std::string_view("IWEF").find(line[0]) != std::string_view::npos &&
         std::isdigit(static_cast<unsigned char>(line[1])) != 0 &&
         std::isdigit(static_cast<unsigned char>(line[4])) != 0;
}

// More JSON than any pod listing a selector should match: a kubectl that
// writes without end is stopped here rather than held in memory.
constexpr size_t kMaxGetOutput = size_t{64} * 1024 * 1024;

bool contains(const std::string& text, std::string_view part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

Kubectl::Kubectl(const KubeTarget& target) : container_(target.container) {
  const char* configured = std::getenv("ENVD_KUBECTL");
  configured_ = configured != nullptr && configured[0] != '\0';
  binary_ = configured_ ? configured : "kubectl";
  // One token per flag (--flag=value): a value can never be read as a flag.
  if (!target.context.empty()) flags_.push_back("--context=" + target.context);
  if (!target.namespace_.empty()) flags_.push_back("--namespace=" + target.namespace_);
}

Error Kubectl::missing() const {
  if (!configured_) {
    return Error(Errc::not_found, "kubectl is not installed: '" + binary_ +
                                      "' is not on PATH (install kubectl, or set ENVD_KUBECTL)");
  }
  return Error(Errc::not_found,
               "ENVD_KUBECTL is '" + binary_ + "', which " +
                   (binary_.find('/') != std::string::npos ? "does not exist or cannot be run"
                                                           : "is not on PATH") +
                   " (point it at kubectl, or unset it to use the kubectl on PATH)");
}

Result<std::string> Kubectl::get_json(const std::vector<std::string>& args,
                                      std::chrono::milliseconds timeout) const {
  sdk::ProcessOptions options;
  options.argv = {binary_};
  options.argv.insert(options.argv.end(), flags_.begin(), flags_.end());
  options.argv.emplace_back("get");
  options.argv.insert(options.argv.end(), args.begin(), args.end());
  options.timeout = timeout;
  options.max_output = kMaxGetOutput;
  auto run = sdk::run_process(options);
  if (!run) {
    if (run.error().code() == Errc::not_found) return missing();
    return run.error();
  }
  if (run->timed_out) {
    return Error(Errc::timeout, "kubectl get did not finish within " +
                                    std::to_string(timeout.count()) +
                                    " ms (is the cluster's "
                                    "API server reachable?)");
  }
  if (run->output_exceeded) {
    return Error(Errc::unavailable,
                 "kubectl get wrote more than " + std::to_string(kMaxGetOutput >> 20) +
                     " MiB, so envd stopped it (does the address's selector match too many "
                     "pods?)");
  }
  if (!run->succeeded()) return kubectl_error(run->err, run->exit_code);
  return run->out;
}

std::vector<std::string> Kubectl::exec_argv(const std::string& pod) const {
  std::vector<std::string> argv = {binary_};
  argv.insert(argv.end(), flags_.begin(), flags_.end());
  argv.insert(argv.end(), {"exec", "-i"});
  if (!container_.empty()) argv.push_back("--container=" + container_);
  argv.insert(argv.end(), {pod, "--", "buildctl", "dial-stdio"});
  return argv;
}

std::string kubectl_reason(const std::string& err) {
  std::string reason;
  size_t start = 0;
  while (start < err.size()) {
    size_t nl = err.find('\n', start);
    std::string line = err.substr(start, nl == std::string::npos ? std::string::npos : nl - start);
    start = nl == std::string::npos ? err.size() : nl + 1;
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (line.empty() || is_klog_line(line)) continue;
    reason = line;
  }
  if (reason.rfind("error: ", 0) == 0) reason = reason.substr(7);
  if (reason.rfind("Error from server", 0) == 0) {
    if (auto colon = reason.find("): "); colon != std::string::npos) {
      reason = reason.substr(colon + 3);
    } else if (auto plain = reason.find(": "); plain != std::string::npos) {
      reason = reason.substr(plain + 2);
    }
  }
  return reason;
}

Error kubectl_error(const std::string& err, int exit_code) {
  std::string reason = kubectl_reason(err);
  if (reason.empty()) {
    return Error(Errc::unavailable, "kubectl exited with " + std::to_string(exit_code));
  }
  Errc code = Errc::unavailable;
  if (contains(reason, "not found") || contains(reason, "does not exist")) code = Errc::not_found;
  if (contains(reason, "forbidden") || contains(reason, "Unauthorized") ||
      contains(reason, "must be logged in")) {
    code = Errc::permission;
  }
  // kubectl's last line, as it is, up to a length a message can hold.
  return Error(code, "kubectl: " + sdk::printable(reason, 400));
}

}  // namespace envd::plugins::kube
