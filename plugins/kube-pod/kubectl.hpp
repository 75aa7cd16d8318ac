// Running kubectl for the kube-pod builder: the binary (ENVD_KUBECTL, else
// "kubectl" on PATH; KUBECONFIG and ~/.kube/config stay kubectl's business),
// the flags an address sets (only those: upstream passed empty ones too), and
// the one line of its stderr that says why it failed.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "envd/result.hpp"
#include "kube_address.hpp"

namespace envd::plugins::kube {

class Kubectl {
 public:
  explicit Kubectl(const KubeTarget& target);

  const std::string& binary() const { return binary_; }

  // Errc::not_found saying the binary cannot be run: "kubectl is not
  // installed: 'kubectl' is not on PATH (install kubectl, or set
  // ENVD_KUBECTL)", or, for ENVD_KUBECTL's value, that it names nothing.
  Error missing() const;

  // `kubectl [--context=C] [--namespace=N] get <args> -o json`, killed and
  // reaped at the deadline (or on the host's cancellation). Errors:
  // Errc::not_found, Errc::permission or Errc::unavailable "kubectl: <why>"
  // from its stderr; Errc::timeout when it did not finish in time;
  // Errc::unavailable when it wrote more than 64 MiB (stopped there);
  // Errc::cancelled.
  Result<std::string> get_json(const std::vector<std::string>& args,
                               std::chrono::milliseconds timeout) const;

  // `kubectl [--context=C] [--namespace=N] exec -i [--container=C] POD --
  // buildctl dial-stdio`.
  std::vector<std::string> exec_argv(const std::string& pod) const;

 private:
  std::string binary_;
  bool configured_ = false;  // binary_ is ENVD_KUBECTL's
  std::vector<std::string> flags_;
  std::string container_;
};

// The line of kubectl's stderr that says why it failed: its last line that is
// not one of client-go's log lines ("E1202 12:00:00.000000 ..."), without
// "error: " or "Error from server (NotFound): " in front; "" if there is none.
std::string kubectl_reason(const std::string& err);

// The error for a failed kubectl: code from the reason's kind ("not found",
// "forbidden", ...), message "kubectl: <reason>" or, without one, its exit status.
Error kubectl_error(const std::string& err, int exit_code);

}  // namespace envd::plugins::kube
