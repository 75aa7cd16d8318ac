// Label selectors for envd_test_kube_apiserver's lists. Test-only.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace envd::test::kube {

using Labels = std::map<std::string, std::string>;

// A label selector as the apiserver parses the labelSelector parameter, with
// the grammar and error messages of apimachinery's labels.Parse: comma-joined
// requirements `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k`, `!k`,
// `k>1` and `k<1`.
class Selector {
 public:
  // Parses an already URL-decoded selector; nullopt with *error on a syntax error.
  static std::optional<Selector> parse(const std::string& text, std::string* error);
  bool matches(const Labels& labels) const;
  bool empty() const { return requirements_.empty(); }

 private:
  struct Requirement {
    std::string key;
    std::string op;  // "=", "!=", "in", "notin", "exists", "!", "gt", "lt"
    std::vector<std::string> values;
  };
  std::vector<Requirement> requirements_;
};

}  // namespace envd::test::kube
