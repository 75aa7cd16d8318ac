// The context's builder daemon, probed and managed through its driver and the
// core's BuildKit client: `envd builder status|stop|rm`, `envd bootstrap` and
// `envd prune`, in envd-client (their flags: builder_commands.cpp). Drivers
// that manage nothing (moby-worker, tcp) answer the lifecycle verbs with their
// own "unsupported" message.
#include "cli/client/commands.hpp"

#include <fmt/core.h>

#include <boost/json.hpp>
#include <cctype>
#include <cmath>
#include <limits>
#include <memory>
#include <string>

#include "cli/builder_target.hpp"
#include "cli/size_flag.hpp"
#include "util/data_out.hpp"
#include "util/duration.hpp"
#include "util/json.hpp"
#include "util/text.hpp"

namespace envd::cli {
namespace {

namespace json = boost::json;

// The driver's JSON answer as an object ({} if it is not one: the driver
// layer already checked the shape).
json::object parse_object(const std::string& text) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  return !ec && v.is_object() ? v.as_object() : json::object{};
}

std::string string_of(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v != nullptr && v->is_string() ? std::string(v->as_string()) : std::string();
}

// Adds "version" and "workers" from BuildKit to `out`.
Status probe_into(const BuilderTarget& target, std::chrono::steady_clock::time_point deadline,
                  std::chrono::milliseconds timeout, json::object& out) {
  // What is left of the command's one connect deadline, at least a moment.
  auto left = [deadline] {
    return std::max(
        std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()),
        std::chrono::milliseconds(1));
  };
  // The driver's look (a slow API server for kube-pod) took nearly the whole
  // deadline: a dial in what is left would fail with "no answer within 1ms",
  // blaming the daemon, and its diagnosis would repeat the slow look.
  if (const auto budget = left(); budget * 10 < timeout) {
    return Error(Errc::timeout,
                 "cannot connect to buildkitd at " + target.context.builder_endpoint() +
                     ": looking at the builder took all but " + std::to_string(budget.count()) +
                     " ms of the " + std::to_string(timeout.count()) +
                     " ms --connect-timeout; give it longer");
  }
  auto client = connect_builder(target, left());
  if (!client) return client.error();
  // The round trip of one probe (Info, then ListWorkers), as the user's
  // network and the daemon's load make it.
  const auto probe_start = std::chrono::steady_clock::now();
  auto info = client->info(left());
  if (!info) return info.error();
  out["rtt_ms"] =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - probe_start)
          .count();
  out["version"] = info->version;
  json::array workers;
  for (const auto& w : info->workers) {
    json::object worker;
    worker["id"] = w.id;
    json::array platforms;
    for (const auto& p : w.platforms) platforms.emplace_back(p);
    worker["platforms"] = std::move(platforms);
    json::array gc;
    for (const auto& rule : w.gc_policy) {
      json::array filters;
      for (const auto& f : rule.filters) filters.emplace_back(f);
      gc.push_back(json::object{{"all", rule.all},
                                {"keep_duration_s", rule.keep_duration.count()},
                                {"keep_bytes", rule.keep_bytes},
                                {"filters", std::move(filters)}});
    }
    worker["gc_policy"] = std::move(gc);
    workers.push_back(std::move(worker));
  }
  out["workers"] = std::move(workers);
  return {};
}

std::string human_bytes(std::int64_t bytes);

// One GC rule for people: "keep 512.00 MB and what was used within 48h, of
// type==source.local, type==exec.cachemount".
std::string describe_gc_rule(const json::object& rule) {
  auto bytes = rule.at("keep_bytes").to_number<std::int64_t>();
  auto seconds = rule.at("keep_duration_s").to_number<std::int64_t>();
  std::string text = bytes > 0 ? "keep " + human_bytes(bytes) : "keep no fixed amount";
  if (seconds > 0) {
    text += seconds % 3600 == 0 ? fmt::format(" and what was used within {}h", seconds / 3600)
                                : fmt::format(" and what was used within {}s", seconds);
  }
  std::string filters;
  for (const auto& f : rule.at("filters").as_array()) {
    filters += (filters.empty() ? "" : ", ") + std::string(f.as_string());
  }
  if (rule.at("all").as_bool()) {
    text += ", of all records";
  } else if (!filters.empty()) {
    text += ", of " + filters;
  }
  return text;
}

void print_probe(const json::object& out) {
  std::string version = string_of(out, "version");
  fmt::print(util::data_out(), "BuildKit:   {}\n",
             version.empty() ? "unknown (the daemon has no Info API)" : util::printable(version));
  if (const auto* workers = out.if_contains("workers"); workers != nullptr) {
    for (const auto& w : workers->as_array()) {
      std::string platforms;
      for (const auto& p : w.at("platforms").as_array()) {
        platforms += (platforms.empty() ? "" : ", ") + std::string(p.as_string());
      }
      fmt::print(util::data_out(), "Worker:     {} ({})\n", util::printable(w.at("id").as_string()),
                 util::printable(platforms));
      const auto* gc = w.as_object().if_contains("gc_policy");
      if (gc == nullptr) continue;
      for (const auto& rule : gc->as_array()) {
        fmt::print(util::data_out(), "GC rule:    {}\n", describe_gc_rule(rule.as_object()));
      }
    }
  }
}

// "1.5 GB"-style, decimal units as BuildKit's own du prints them.
std::string human_bytes(std::int64_t bytes) {
  const char* units[] = {"B", "kB", "MB", "GB", "TB"};
  double value = static_cast<double>(bytes);
  int unit = 0;
  while (value >= 1000 && unit < 4) {
    value /= 1000;
    ++unit;
  }
  return unit == 0 ? fmt::format("{} B", bytes) : fmt::format("{:.2f} {}", value, units[unit]);
}

// What every builder command starts from: its output format, its deadline
// and the context's builder, each flag checked before anything is contacted.
struct Command {
  OutputFormat format = OutputFormat::table;
  std::chrono::milliseconds timeout{};
  BuilderTarget target;
};

Result<Command> prepare(Invocation& invocation, const std::string& format_flag,
                        const std::string& timeout_flag) {
  auto format = parse_format(format_flag);
  if (!format) return format.error();
  auto timeout = connect_timeout(timeout_flag);
  if (!timeout) return timeout.error();
  auto target = resolve_builder(invocation);
  if (!target) return target.error();
  return Command{*format, *timeout, std::move(*target)};
}

}  // namespace

// ---- envd builder status ---------------------------------------------------

Status run_builder_status(Invocation& invocation, const std::string& format_flag,
                          const std::string& timeout_flag) {
  auto command = prepare(invocation, format_flag, timeout_flag);
  if (!command) return command.error();
  const auto& [format, timeout, target] = *command;

  json::object out;
  out["context"] = target.context.name;
  out["builder"] = target.context.builder;
  out["address"] = target.context.builder_endpoint();

  // One deadline for the whole command, as --connect-timeout promises: the
  // driver's look at its container and the probe share it.
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  // A managed builder reports its container; one that is not running is a
  // state, not a failure, and is not started just to be probed.
  auto driver_status = target.driver.status(driver_request(target, timeout));
  json::object driver = driver_status ? parse_object(*driver_status) : json::object{};
  std::string state = string_of(driver, "state");
  if (!driver.empty()) {
    out["state"] = state;
    out["detail"] = string_of(driver, "detail");
    out["driver"] = driver;
  }
  // A stale container is not dialled either: dialling refuses it.
  bool down = state == "missing" || state == "stopped" || driver.contains("stale");
  // A driver that could not look (its Engine did not answer) is the news:
  // a dial would meet the same, with what is left of the deadline (1 ms).
  bool looked = driver_status || driver_status.error().code() == Errc::unsupported;
  Status reachable;
  if (!looked) {
    const Error& e = driver_status.error();
    std::string why =
        "cannot look at the builder " + target.context.builder_endpoint() + ": " + e.message();
    // Unless the driver's own words say the time already.
    const std::string ms = std::to_string(timeout.count()) + " ms";
    if (e.code() == Errc::timeout && e.message().find(ms) == std::string::npos) {
      why += " (connect timeout: " + ms + ")";
    }
    reachable = Error(e.code(), why);
  } else if (down) {
    reachable = Error(Errc::unavailable, string_of(driver, "detail"));
  } else {
    reachable = probe_into(target, deadline, timeout, out);
  }
  out["reachable"] = reachable.ok();
  if (!reachable) out["error"] = reachable.error().message();

  if (format == OutputFormat::json) {
    fmt::print(util::data_out(), "{}", util::to_compact_json(out));
  } else {
    fmt::print(util::data_out(), "Context:    {}\n", target.context.name);
    fmt::print(util::data_out(), "Builder:    {}\n", target.context.builder_endpoint());
    // What a driver or daemon says is shown printable: it may hold anything.
    if (!state.empty()) fmt::print(util::data_out(), "State:      {}\n", util::printable(state));
    // A builder with no container or pod of its own (tcp, unix, moby-worker)
    // says here what its state means ("unknown": envd does not manage it).
    std::string detail = string_of(driver, "detail");
    if (!down && !detail.empty() && !driver.contains("container_state") &&
        !driver.contains("pod")) {
      fmt::print(util::data_out(), "Detail:     {}\n", util::printable(detail));
    }
    if (std::string c = string_of(driver, "container_state"); !c.empty()) {
      fmt::print(util::data_out(), "Container:  {} ({})\n",
                 util::printable(string_of(driver, "container")), util::printable(c));
    }
    if (std::string pod = string_of(driver, "pod"); !pod.empty()) {
      fmt::print(util::data_out(), "Pod:        {} (namespace {}, {})\n", util::printable(pod),
                 util::printable(string_of(driver, "namespace")),
                 util::printable(string_of(driver, "phase")));
    }
    if (std::string image = string_of(driver, "image"); !image.empty()) {
      fmt::print(util::data_out(), "Image:      {}\n", util::printable(image));
    }
    if (std::string volume = string_of(driver, "volume"); !volume.empty()) {
      fmt::print(util::data_out(), "Volume:     {}\n", util::printable(volume));
    }
    if (std::string stale = string_of(driver, "stale"); !stale.empty()) {
      fmt::print(util::data_out(), "Stale:      {} (envd bootstrap --recreate)\n",
                 util::printable(stale));
    }
    fmt::print(util::data_out(), "Reachable:  {}\n", reachable ? "yes" : "no");
    if (reachable) {
      print_probe(out);
      fmt::print(util::data_out(), "Round trip: {:.1f} ms\n", out["rtt_ms"].to_number<double>());
    }
    if (down) fmt::print(util::data_out(), "Detail:     {}\n", util::printable(detail));
  }
  // Down is a state to bootstrap from, unless the driver says its settings
  // cannot make a daemon (a file they name cannot be read): then the next
  // build fails, and so does this look, for a script's gate.
  if (!reachable && (!down || driver.contains("unusable"))) return reachable;
  return {};
}

// ---- envd bootstrap --------------------------------------------------------

Status run_bootstrap(Invocation& invocation, bool recreate, const std::string& format_flag,
                     const std::string& timeout_flag) {
  auto command = prepare(invocation, format_flag, timeout_flag);
  if (!command) return command.error();
  const auto& [format, timeout, target] = *command;
  json::object args{{"recreate", recreate}};
  auto result = target.driver.bootstrap(driver_request(target, timeout, json::serialize(args)));
  if (!result) {
    return result.error().wrap("cannot bootstrap the builder of context '" + target.context.name +
                               "'");
  }
  json::object out = parse_object(*result);
  out["context"] = target.context.name;
  out["address"] = target.context.builder_endpoint();
  // The probe after a bootstrap has a deadline of its own: the bootstrap may
  // have pulled an image, which the connect timeout does not bound.
  if (auto probed = probe_into(target, std::chrono::steady_clock::now() + timeout, timeout, out);
      !probed) {
    return probed;
  }
  if (format == OutputFormat::json) {
    fmt::print(util::data_out(), "{}", util::to_compact_json(out));
    return {};
  }
  std::string action = string_of(out, "action");
  fmt::print(util::data_out(), "Builder:    {}{}\n", target.context.builder_endpoint(),
             action.empty() ? "" : " (" + action + ")");
  if (std::string image = string_of(out, "image"); !image.empty()) {
    fmt::print(util::data_out(), "Image:      {}\n", util::printable(image));
  }
  if (std::string volume = string_of(out, "volume"); !volume.empty()) {
    fmt::print(util::data_out(), "Volume:     {}\n", util::printable(volume));
  }
  print_probe(out);
  return {};
}

// ---- envd builder stop / rm ------------------------------------------------

Status run_builder_stop(Invocation& invocation, const std::string& timeout_flag) {
  auto command = prepare(invocation, "table", timeout_flag);
  if (!command) return command.error();
  const BuilderTarget& target = command->target;
  if (auto st = target.driver.stop(driver_request(target, command->timeout)); !st) return st;
  inform("stopped " + target.context.builder_endpoint());
  return {};
}

Status run_builder_rm(Invocation& invocation, bool keep_cache, const std::string& timeout_flag) {
  auto command = prepare(invocation, "table", timeout_flag);
  if (!command) return command.error();
  const BuilderTarget& target = command->target;
  json::object args{{"keep_cache", keep_cache}};
  if (auto st =
          target.driver.remove(driver_request(target, command->timeout, json::serialize(args)));
      !st) {
    return st;
  }
  inform("removed " + target.context.builder_endpoint() +
         (keep_cache ? " (its build cache is kept)" : " and its build cache"));
  return {};
}

// ---- envd prune ------------------------------------------------------------

Status run_prune(Invocation& invocation, const PruneRequest& flags) {
  buildkit::PruneOptions options;
  options.all = flags.all;
  if (!flags.keep_storage.empty()) {
    auto bytes = parse_size_flag(flags.keep_storage, "--keep-storage");
    if (!bytes) return bytes.error();
    options.keep_bytes = *bytes;
  }
  if (!flags.keep_duration.empty()) {
    auto duration = util::parse_duration(flags.keep_duration, "--keep-duration");
    if (!duration) return duration.error();
    options.keep_duration = *duration;
  }
  auto command = prepare(invocation, flags.format, flags.timeout);
  if (!command) return command.error();
  buildkit::CancelToken cancel = command->target.cancel;
  auto client = connect_builder(command->target, command->timeout);
  if (!client) return client.error();
  // Removing a large cache takes far longer than connecting.
  auto pruned = client->prune(options, std::chrono::hours(1), cancel);
  if (!pruned) return pruned.error();
  if (command->format == OutputFormat::json) {
    json::object out{{"records", pruned->records}, {"reclaimed_bytes", pruned->reclaimed_bytes}};
    fmt::print(util::data_out(), "{}", util::to_compact_json(out));
  } else {
    fmt::print(util::data_out(), "Removed {} cache record{}, reclaimed {}\n", pruned->records,
               pruned->records == 1 ? "" : "s", human_bytes(pruned->reclaimed_bytes));
  }
  return {};
}

}  // namespace envd::cli
