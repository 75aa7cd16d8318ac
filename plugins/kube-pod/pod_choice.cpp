#include "pod_choice.hpp"

#include <algorithm>
#include <boost/json.hpp>
#include <cstdint>
#include <map>

namespace envd::plugins::kube {
namespace {

namespace json = boost::json;

std::string string_at(const json::value* object, std::string_view key) {
  if (object == nullptr || !object->is_object()) return {};
  const json::value* v = object->as_object().if_contains(key);
  return v != nullptr && v->is_string() ? std::string(v->as_string()) : std::string();
}

const json::value* member(const json::value* object, std::string_view key) {
  if (object == nullptr || !object->is_object()) return nullptr;
  return object->as_object().if_contains(key);
}

const json::array* array_at(const json::value* object, std::string_view key) {
  const json::value* v = member(object, key);
  return v != nullptr && v->is_array() ? &v->as_array() : nullptr;
}

Result<json::value> parse_json(const std::string& text, const char* what) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec || !v.is_object()) {
    std::string head = text.substr(0, 80);
    std::replace(head.begin(), head.end(), '\n', ' ');
    return Error(Errc::internal, std::string("kubectl did not print a ") + what +
                                     " as JSON (it printed '" + head + "')");
  }
  return v;
}

PodFacts facts_of(const json::value& pod) {
  PodFacts facts;
  const json::value* metadata = member(&pod, "metadata");
  facts.name = string_at(metadata, "name");
  facts.namespace_ = string_at(metadata, "namespace");
  facts.deleting = member(metadata, "deletionTimestamp") != nullptr &&
                   !member(metadata, "deletionTimestamp")->is_null();
  const json::value* status = member(&pod, "status");
  facts.phase = string_at(status, "phase");
  if (const json::array* containers = array_at(member(&pod, "spec"), "containers")) {
    for (const auto& c : *containers) facts.containers.push_back(string_at(&c, "name"));
  }
  std::string condition_reason;
  if (const json::array* conditions = array_at(status, "conditions")) {
    for (const auto& c : *conditions) {
      const bool is_true = string_at(&c, "status") == "True";
      if (string_at(&c, "type") == "Ready") facts.ready = is_true;
      if (!is_true && condition_reason.empty()) condition_reason = string_at(&c, "reason");
    }
  }
  if (const json::array* statuses = array_at(status, "containerStatuses")) {
    for (const auto& s : *statuses) {
      const json::value* state = member(&s, "state");
      std::string reason = string_at(member(state, "waiting"), "reason");
      if (reason.empty()) reason = string_at(member(state, "terminated"), "reason");
      if (!reason.empty() && facts.reason.empty()) {
        facts.reason = "container " + string_at(&s, "name") + ": " + reason;
      }
    }
  }
  if (facts.reason.empty()) facts.reason = condition_reason;
  if (facts.reason.empty()) facts.reason = string_at(status, "reason");
  return facts;
}

std::uint64_t fnv1a(std::string_view text) {
  std::uint64_t hash = 0xcbf29ce484222325ULL;
  for (unsigned char c : text) {
    hash ^= c;
    hash *= 0x100000001b3ULL;
  }
  return hash;
}

}  // namespace

std::string PodFacts::why_unusable() const {
  std::string where = "pod " + name + (namespace_.empty() ? "" : " in namespace " + namespace_);
  std::string why;
  if (deleting) {
    why = "is being deleted";
  } else if (phase != "Running") {
    why = "is " + (phase.empty() ? std::string("in no phase") : phase);
  } else {
    why = "is Running but not Ready";
  }
  if (!reason.empty()) why += " (reason: " + reason + ")";
  return where + " " + why;
}

Result<PodFacts> parse_pod(const std::string& text) {
  auto v = parse_json(text, "pod");
  if (!v) return v.error();
  return facts_of(*v);
}

Result<std::vector<PodFacts>> parse_pod_list(const std::string& text) {
  auto v = parse_json(text, "pod list");
  if (!v) return v.error();
  std::vector<PodFacts> pods;
  if (const json::array* items = array_at(&*v, "items")) {
    for (const auto& item : *items) pods.push_back(facts_of(item));
  }
  return pods;
}

Result<std::string> parse_workload_selector(const std::string& text) {
  auto v = parse_json(text, "workload");
  if (!v) return v.error();
  const json::value* selector_json = member(member(&*v, "spec"), "selector");
  const json::value* labels = member(selector_json, "matchLabels");
  std::map<std::string, std::string> sorted;
  if (labels != nullptr && labels->is_object()) {
    for (const auto& [key, value] : labels->as_object()) {
      if (value.is_string()) sorted[std::string(key)] = std::string(value.as_string());
    }
  }
  std::string selector;
  for (const auto& [key, value] : sorted) {
    if (!selector.empty()) selector += ',';
    selector.append(key).append("=").append(value);
  }
  // matchExpressions too, in the selector syntax kubectl takes ("k in
  // (a,b)", "k notin (a)", "k", "!k"): left out, a workload's pods were
  // chosen among pods its selector excludes (buildx applies the whole
  // selector).
  const json::value* expressions = member(selector_json, "matchExpressions");
  if (expressions != nullptr && expressions->is_array()) {
    for (const auto& item : expressions->as_array()) {
      const json::value* key = member(&item, "key");
      const json::value* op = member(&item, "operator");
      if (key == nullptr || !key->is_string() || op == nullptr || !op->is_string()) {
        return Error(Errc::invalid_argument,
                     "the workload's selector has a matchExpression "
                     "without a key or operator");
      }
      std::string term(key->as_string());
      const std::string oper(op->as_string());
      if (oper == "In" || oper == "NotIn") {
        std::vector<std::string> values;
        if (const json::value* list = member(&item, "values");
            list != nullptr && list->is_array()) {
          for (const auto& value : list->as_array()) {
            if (value.is_string()) values.emplace_back(value.as_string());
          }
        }
        std::sort(values.begin(), values.end());
        term += oper == "In" ? " in (" : " notin (";
        for (std::size_t i = 0; i < values.size(); ++i) term += (i > 0 ? "," : "") + values[i];
        term += ")";
      } else if (oper == "DoesNotExist") {
        term.insert(0, "!");
      } else if (oper != "Exists") {
        return Error(Errc::invalid_argument,
                     "the workload's selector has the unknown operator '" + oper + "'");
      }
      if (!selector.empty()) selector += ',';
      selector += term;
    }
  }
  return selector;
}

Result<PodFacts> choose_pod(const std::vector<PodFacts>& pods, const std::string& context,
                            const std::string& what) {
  std::vector<const PodFacts*> usable;
  for (const auto& pod : pods) {
    if (pod.usable()) usable.push_back(&pod);
  }
  if (usable.empty()) {
    std::string seen;
    for (const auto& pod : pods) {
      seen += (seen.empty() ? "" : "; ") + pod.why_unusable();
    }
    return Error(Errc::unavailable,
                 "no Running, Ready pod for " + what +
                     (seen.empty() ? " (there are no pods)" : " (" + seen + ")"));
  }
  // Rendezvous hashing: each pod scores the context, the highest wins. A pod
  // that goes away moves only the contexts it had; the others keep theirs
  // and their cache (a hash modulo the count moved most contexts at once).
  auto score = [&](const PodFacts* pod) {
    std::string key = context;
    key += '\0';
    key += pod->name;
    return fnv1a(key);
  };
  return **std::max_element(usable.begin(), usable.end(),
                            [&](const PodFacts* a, const PodFacts* b) {
                              auto sa = score(a);
                              auto sb = score(b);
                              return sa != sb ? sa < sb : a->name > b->name;
                            });
}

}  // namespace envd::plugins::kube
