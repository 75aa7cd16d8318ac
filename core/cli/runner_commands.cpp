// Environments on the context's runner, through its driver: `envd run`,
// `envd up`, `envd envs ls|describe`, `envd down` (`envs logs` and `attach`
// are in environment_session.cpp). Each resolves --context / ENVD_CONTEXT
// / the current context as the build commands do, and loads only the
// context's runner module.
#include <fmt/core.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "cli/build_command.hpp"
#include "cli/choice_flag.hpp"
#include "cli/client/program.hpp"
#include "cli/commands.hpp"
#include "cli/empty_values.hpp"
#include "cli/environment_name.hpp"
#include "cli/environment_session.hpp"
#include "cli/flag_values.hpp"
#include "cli/runner_target.hpp"
#include "cli/signal_watcher.hpp"
#include "cli/size_flag.hpp"
#include "cli/table.hpp"
#include "output/image_name.hpp"
#include "util/data_out.hpp"
#include "util/duration.hpp"
#include "util/json.hpp"
#include "util/text.hpp"

namespace envd::cli {
namespace {

namespace json = boost::json;

constexpr std::chrono::milliseconds kRunTimeout{60000};
constexpr std::chrono::milliseconds kQueryTimeout{30000};

Error usage(const std::string& message) { return Error(Errc::invalid_argument, message); }

std::string string_of(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v != nullptr && v->is_string() ? std::string(v->as_string()) : std::string();
}

// The runner's restart count ("restarts"; a runner that keeps none sends
// none), 0 when absent or not a count.
std::int64_t restarts_of(const json::object& e) {
  const json::value* v = e.if_contains("restarts");
  if (v != nullptr && v->is_int64()) return std::max<std::int64_t>(v->as_int64(), 0);
  if (v != nullptr && v->is_uint64()) {
    return static_cast<std::int64_t>(
        std::min<std::uint64_t>(v->as_uint64(), std::numeric_limits<std::int64_t>::max()));
  }
  return 0;
}

// The list's STATUS: "running", or "running (3 restarts)" for a container the
// runner restarted (one that crashes after `run` saw it up shows so).
std::string status_with_restarts(const json::object& e) {
  std::string status = string_of(e, "status");
  if (std::int64_t n = restarts_of(e); n > 0) {
    status += fmt::format(" ({} restart{})", n, n == 1 ? "" : "s");
  }
  return status;
}

// ---- envd run ---------------------------------------------------------------

struct RunFlags {
  std::string image;
  std::string name;
  std::vector<std::string> env;
  std::vector<std::string> ports;
  std::vector<std::string> volumes;
  std::string shm_size;
  std::string cpu_set;
  std::vector<std::string> caps;
  std::string cpus;
  std::string memory;
  std::string gpus;
  std::string restart;
  std::string network;
  const char* network_flag = "--network";  // up's is --env-network
  // Set once run_spec's warnings have been said: up makes the spec twice
  // (checked before the build, created after it).
  bool warnings_said = false;
  std::string timeout;
  bool force = false;
  std::vector<std::string> command;
};

// --cpus: from 0.001 (Kubernetes' 1m, the least any runner takes): under
// 1e-9 a share rounds to Docker's NanoCpus 0, no limit at all. The docker
// runner asks for 0.01, Docker's own floor.
Result<double> parse_cpus(const std::string& text) {
  char* end = nullptr;
  double cpus = std::strtod(text.c_str(), &end);
  if (end == text.c_str() || *end != '\0' || !(cpus >= 0.001) || cpus > 1e6) {
    return usage("invalid --cpus '" + util::printable(text, 80) +
                 "': expected a number of CPUs from 0.001, e.g. 1.5");
  }
  return cpus;
}

// --memory: a positive size.
Result<std::int64_t> parse_memory(const std::string& text) {
  auto bytes = parse_size_flag(text, "--memory");
  if (!bytes) return bytes.error();
  if (*bytes <= 0) {
    return usage("invalid --memory '" + util::printable(text, 80) + "': it must be positive");
  }
  return bytes;
}

// --shm-size: a positive size with its unit. Upstream envd read a bare
// number as MiB, Docker as bytes: neither is guessed.
Result<std::int64_t> parse_shm_size(const std::string& text) {
  if (!text.empty() && std::all_of(text.begin(), text.end(), [](char c) {
        return std::isdigit(static_cast<unsigned char>(c)) != 0;
      })) {
    return usage("invalid --shm-size '" + util::printable(text, 80) +
                 "': give a unit, e.g. 2048MiB or 2g (upstream envd read a bare number as MiB, "
                 "Docker as bytes)");
  }
  auto bytes = parse_size_flag(text, "--shm-size");
  if (!bytes) return bytes.error();
  if (*bytes <= 0) {
    return usage("invalid --shm-size '" + util::printable(text, 80) + "': it must be positive");
  }
  return bytes;
}

// A check of CLI11's that reads the flag's value with `parse`, as run_spec
// reads it later: a malformed value is then a usage error (exit 2) like a
// size or a duration that is not one, in the parser's own words.
template <typename Parse>
CLI::Validator read_by(Parse parse) {
  return CLI::Validator(
      [parse](const std::string& text) {
        auto read = parse(text);
        return read ? std::string() : read.error().message();
      },
      "", "");
}

// --volume's own shape; a relative SOURCE is resolved against the working
// directory only when the spec is made (run_spec), which may find it gone.
Result<VolumeMount> volume_shape(const std::string& text) { return parse_volume(text, "/"); }

Result<EnvValue> env_shape(const std::string& text) { return parse_env_value(text); }

Status image_shape(const std::string& text) {
  if (auto st = check_utf8("--image", text); !st) return st;
  return output::validate_image_reference(text);
}

// Two --volume flags with one TARGET: a command line that cannot be run as
// given, refused with the usage errors once the parse is complete.
void refuse_shared_targets(const std::vector<std::string>& volumes) {
  std::set<std::string> targets;
  for (const auto& item : volumes) {
    auto mount = volume_shape(item);
    if (mount && !targets.insert(mount->target).second) {
      throw CLI::ValidationError("--volume: two volumes are mounted at " +
                                 util::printable(mount->target));
    }
  }
}

json::object port_object(const PortPublish& publish) {
  return json::object{{"host_ip", publish.host_ip},
                      {"host_port", publish.host_port},
                      {"container_port", publish.container_port},
                      {"protocol", publish.protocol}};
}

Result<json::object> run_spec(const RunFlags& flags) {
  json::object spec{{"image", flags.image}, {"force", flags.force}};
  if (flags.image.empty()) return usage("--image is required");
  // Everything below goes to the runner as JSON text.
  for (const auto& [flag, value] :
       {std::pair<const char*, const std::string*>{"--image", &flags.image},
        {"--name", &flags.name},
        {"--cpus", &flags.cpus},
        {"--memory", &flags.memory},
        {"--gpus", &flags.gpus},
        {"--restart", &flags.restart},
        {flags.network_flag, &flags.network}}) {
    if (auto st = check_utf8(flag, *value); !st) return st.error();
  }
  for (const auto& word : flags.command) {
    if (auto st = check_utf8("command word", word); !st) return st.error();
  }
  // The runner puts it into its API's paths (the Engine's /images/{name}/json):
  // only a reference in Docker's grammar goes, as `docker run` checks it.
  if (auto st = output::validate_image_reference(flags.image); !st) {
    return usage("--image: " + st.error().message());
  }
  if (!flags.name.empty()) spec["name"] = flags.name;
  json::object env;
  for (const auto& item : flags.env) {
    auto parsed = parse_env_value(item);
    if (!parsed) return parsed.error();
    if (!parsed->bare) {
      env[parsed->key] = parsed->value;
    } else if (const char* value = std::getenv(parsed->key.c_str())) {
      // As docker run does: a bare KEY passes envd's own value, if it has one.
      if (auto st =
              check_utf8("--env " + parsed->key + " (its value in envd's environment)", value);
          !st) {
        return st.error();
      }
      env[parsed->key] = value;
    }
  }
  spec["env"] = std::move(env);
  json::array ports;
  for (const auto& item : flags.ports) {
    auto publishes = parse_publish(item);
    if (!publishes) return publishes.error();
    for (const auto& publish : *publishes) ports.push_back(port_object(publish));
  }
  spec["ports"] = std::move(ports);
  if (!flags.volumes.empty()) {
    // Sent only when given: a runner older than ABI 1.7 does not know the
    // key, and the core refuses it there rather than see it dropped.
    std::error_code ec;
    const std::string cwd = std::filesystem::current_path(ec).string();
    json::array volumes;  // targets distinct: refuse_shared_targets
    for (const auto& item : flags.volumes) {
      auto mount = parse_volume(item, cwd);
      if (!mount) return mount.error();
      if (mount->type == "bind" && mount->source.front() != '/') {  // relative, and no cwd
        return usage("--volume '" + util::printable(item) +
                     "': the current directory is gone: " + ec.message());
      }
      volumes.push_back(json::object{{"type", mount->type},
                                     {"source", mount->source},
                                     {"target", mount->target},
                                     {"read_only", mount->read_only}});
    }
    spec["volumes"] = std::move(volumes);
  }
  if (!flags.cpus.empty()) {
    auto cpus = parse_cpus(flags.cpus);
    if (!cpus) return cpus.error();
    spec["cpus"] = *cpus;
  }
  if (!flags.memory.empty()) {
    auto bytes = parse_memory(flags.memory);
    if (!bytes) return bytes.error();
    spec["memory"] = *bytes;
  }
  // The keys of ABI 1.7, like volumes: sent only when given.
  if (!flags.shm_size.empty()) {
    auto bytes = parse_shm_size(flags.shm_size);
    if (!bytes) return bytes.error();
    spec["shm_size"] = *bytes;
  }
  if (!flags.cpu_set.empty()) {
    auto cpus = parse_cpu_set(flags.cpu_set);
    if (!cpus) return cpus.error();
    spec["cpuset"] = *cpus;
  }
  if (!flags.caps.empty()) {
    json::array caps;
    for (const auto& item : flags.caps) {
      auto cap = parse_capability(item);
      if (!cap) return cap.error();
      caps.emplace_back(*cap);
    }
    spec["cap_add"] = std::move(caps);
  }
  if (!flags.gpus.empty()) spec["gpus"] = flags.gpus;
  if (!flags.restart.empty()) spec["restart"] = flags.restart;
  if (!flags.network.empty()) spec["network"] = flags.network;
  if (flags.network == "host" && !spec["ports"].as_array().empty() && !flags.warnings_said) {
    // As docker run warns: the Engine drops them without a word.
    warn(fmt::format(
        "published ports (-p) are discarded with {} host: the environment listens on the host's "
        "ports directly",
        flags.network_flag));
  }
  json::array command;
  for (const auto& arg : flags.command) command.emplace_back(arg);
  spec["command"] = std::move(command);
  return spec;
}

// What create is given for `flags`: the context's runner and the request.
// `envd up` asks the runner to check it before its build, then creates.
struct CreateCall {
  RunnerTarget target;
  plugin::DriverRequest request;
  std::string name;  // the spec's, if it has one
};

Result<CreateCall> prepare_create(Invocation& invocation, const RunFlags& flags) {
  auto spec = run_spec(flags);
  if (!spec) return spec.error();
  auto timeout = runner_timeout(flags.timeout, kRunTimeout);
  if (!timeout) return timeout.error();
  auto target = resolve_runner(invocation);
  if (!target) return target.error();
  auto request = runner_request(*target, *timeout, json::object{{"spec", *spec}});
  return CreateCall{std::move(*target), std::move(request), string_of(*spec, "name")};
}

// Creates and starts the environment; returns its name.
Result<std::string> start_environment(Invocation& invocation, const RunFlags& flags) {
  auto call = prepare_create(invocation, flags);
  if (!call) return call.error();
  auto created = call->target.driver.create(call->request);
  if (!created) return created.error();
  auto env = util::parse_json(*created, "the runner's answer");
  std::string name = env && env->is_object() ? string_of(env->as_object(), "name") : "";
  return name.empty() ? call->name : name;
}

Status run_run(Invocation& invocation, const RunFlags& flags) {
  if (auto st = refuse_closed_stdout("the environment's name"); !st) return st;
  auto name = start_environment(invocation, flags);
  if (!name) return name.error();
  fmt::print(util::data_out(), "{}\n", *name);
  return {};
}

// ---- envd up -------------------------------------------------------------------

// `dir` resolved, as for the image's name (output::default_image_tag):
// `envd up` gives "<cwd>/.", whose own last component is ".".
std::filesystem::path resolved_directory(const std::filesystem::path& dir) {
  std::error_code ec;
  std::filesystem::path resolved = std::filesystem::weakly_canonical(dir, ec);
  if (ec) resolved = std::filesystem::absolute(dir).lexically_normal();
  return resolved;
}

// An environment name from a directory, as upstream envd makes it
// (environment_name.hpp): from the resolved directory's basename.
std::string name_from_directory(const std::filesystem::path& dir) {
  const std::filesystem::path resolved = resolved_directory(dir);
  std::string base = resolved.filename().string();
  if (base.empty()) base = resolved.parent_path().filename().string();
  return environment_name_from(base);
}

// Builds PATH with the context's builder, then runs the image on its runner:
// into the local Engine for the docker runner, pushed to its registry for
// envd-server (which pulls it), as upstream envd does.
Status run_up(Invocation& invocation, BuildRequest build, RunFlags flags, bool detach) {
  if (auto st = refuse_closed_stdout("the environment's name"); !st) return st;
  auto checked_dir = build_context_dir(build.path);
  if (!checked_dir) return checked_dir.error();
  const std::filesystem::path dir = std::move(*checked_dir);
  // The environment runs the first name; the build gives the image them all.
  auto names = output::image_names(build.tags, dir);
  if (!names) return names.error();
  build.tags = *names;
  flags.image = build.tags.front();
  const bool named_after_directory = flags.name.empty();
  if (named_after_directory) flags.name = name_from_directory(dir);
  // The environment's name is up's one line of data, with --quiet too.
  build.quiet_prints_image_id = false;
  // The runner checks what create will be given (ABI 1.6: the name, its
  // address, a login) before the build, so that a bad name is not found
  // after minutes of building. Its signal watcher ends with this block: one
  // at a time owns Ctrl-C, and the build has its own.
  {
    auto call = prepare_create(invocation, flags);
    if (!call) return call.error();
    flags.warnings_said = true;
    if (auto st = call->target.driver.check_create(call->request); !st) {
      // A name the runner refuses that the user never gave: say where it
      // came from, and how to give one.
      if (named_after_directory && st.error().code() == Errc::invalid_argument &&
          st.error().message().find("'" + flags.name + "'") != std::string::npos) {
        return Error(Errc::invalid_argument,
                     st.error().message() + " (the name is made from the directory '" +
                         resolved_directory(dir).string() + "'; give one with --name)");
      }
      return st;
    }
    // A name already taken fails now too, not after the build (which would
    // also have retagged the image that environment may run). --force
    // replaces it after the build, as create does.
    if (!flags.force && !call->name.empty()) {
      auto found = call->target.driver.inspect(
          runner_request(call->target, call->request.timeout, json::object{{"name", call->name}}));
      if (found) {
        auto env = util::parse_json(*found, "the runner's answer");
        std::string status =
            env && env->is_object() ? string_of(env->as_object(), "status") : std::string();
        return Error(Errc::already_exists,
                     "runner '" + call->target.context.runner + "': the name '" + call->name +
                         "' is in use by an environment" +
                         (status.empty() ? "" : " (" + status + ")") +
                         ": choose another --name, or replace it with --force");
      }
      // The name is a container's the runner did not make (the docker
      // runner's "is not an envd environment"): taken all the same.
      if (found.error().code() == Errc::already_exists) {
        return Error(
            Errc::already_exists,
            found.error().message() + ": choose another --name, or replace it with --force");
      }
      // A runner without inspect cannot say: create will.
      if (found.error().code() != Errc::not_found && found.error().code() != Errc::unsupported) {
        return found.error();
      }
    }
  }

  // Which runner decides where the image must go.
  auto current = invocation.current_context();
  if (!current) return current.error();
  if (current->context.runner == "envd-server") {
    // One CSV record: several names are one quoted field ("name=a,b").
    std::string name_field = "name=" + output::exporter_name(build.tags);
    if (build.tags.size() > 1) name_field = '"' + name_field + '"';
    std::string push = "type=image," + name_field + ",push=true";
    if (!build.output.empty() && build.output != push) {
      return usage("envd up pushes the image for the envd-server runner (" + push +
                   "); drop --output");
    }
    build.output = push;
  } else if (!build.output.empty()) {
    return usage("envd up loads the image into the Docker Engine for the " +
                 current->context.runner + " runner; drop --output");
  }
  auto built =
      run_in_client([&](const ClientApi& client) { return client.build(invocation, build); });
  if (!built) return built;
  auto name = start_environment(invocation, flags);
  if (!name) return name.error();
  fmt::print(util::data_out(), "{}\n", *name);
  // As upstream: a developer at a terminal lands in the environment; a script
  // (or --detach) gets the name and the environment keeps running.
  if (detach || ::isatty(STDIN_FILENO) != 1 || ::isatty(util::data_fd()) != 1) return {};
  std::fflush(util::data_out());
  auto target = resolve_runner(invocation);
  if (!target) return target.error();
  return attach_to(invocation, *target, *name, "");
}

// ---- envd envs ls / describe ------------------------------------------------

// The flags of envs ls, envs describe and down.
struct QueryFlags {
  std::string format = "table";
  std::string timeout;
};

Status run_ls(Invocation& invocation, const QueryFlags& flags) {
  auto format = parse_format(flags.format);
  if (!format) return format.error();
  auto timeout = runner_timeout(flags.timeout, kQueryTimeout);
  if (!timeout) return timeout.error();
  auto target = resolve_runner(invocation);
  if (!target) return target.error();
  auto listed = target->driver.list(runner_request(*target, *timeout, json::object{}));
  if (!listed) return listed.error();
  auto parsed = util::parse_json(*listed, "the runner's list");
  if (!parsed) return parsed.error();
  if (*format == OutputFormat::json) {
    fmt::print(util::data_out(), "{}", util::to_compact_json(*parsed));
    return {};
  }
  Table table({"NAME", "IMAGE", "STATUS", "ENDPOINT", "CREATED"});
  for (const auto& item : parsed->as_array()) {
    if (!item.is_object()) continue;
    const auto& e = item.as_object();
    table.add_row({table.keep({string_of(e, "name")}), table.keep({string_of(e, "image")}),
                   table.keep({status_with_restarts(e)}), table.keep({string_of(e, "endpoint")}),
                   table.keep({string_of(e, "created")})});
  }
  table.print(util::data_out());
  return {};
}

std::string scalar_text(const json::value& v) {
  if (v.is_string()) return std::string(v.as_string());
  if (v.is_null()) return "";
  return json::serialize(v);
}

std::string human_memory(std::int64_t bytes) {
  if (bytes <= 0) return "no limit";
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes);
  int unit = 0;
  while (value >= 1024 && unit < 4) {
    value /= 1024;
    ++unit;
  }
  return unit == 0 ? fmt::format("{} B", bytes) : fmt::format("{:.1f} {}", value, units[unit]);
}

// The describe view: one "Key: value" line per fact, lists indented below.
std::string describe_text(const json::object& e) {
  std::string out;
  // Every value comes from the runner's daemon: escaped, so that none can
  // drive the terminal or add a line.
  // An empty value shows as "-", not as trailing blanks.
  auto line = [&](const std::string& key, const std::string& value) {
    out += fmt::format("{:<10} {}\n", key + ":", value.empty() ? "-" : util::printable(value));
  };
  line("Name", string_of(e, "name"));
  line("Image", string_of(e, "image"));
  std::string status = string_of(e, "status");
  if (status == "exited" || status == "dead") {
    status +=
        fmt::format(" (code {})", e.contains("exit_code") ? scalar_text(e.at("exit_code")) : "?");
  }
  line("Status", status);
  line("Created", string_of(e, "created"));
  line("Endpoint", string_of(e, "endpoint"));
  if (const auto* command = e.if_contains("command"); command != nullptr && command->is_array()) {
    std::string text;
    for (const auto& arg : command->as_array()) {
      text += (text.empty() ? "" : " ") + scalar_text(arg);
    }
    line("Command", text);
  }
  std::string restart = string_of(e, "restart");
  if (std::int64_t n = restarts_of(e); n > 0) {
    restart +=
        fmt::format("{}restarted {} time{}", restart.empty() ? "" : ", ", n, n == 1 ? "" : "s");
  }
  line("Restart", restart);
  if (const auto* caps = e.if_contains("cap_add"); caps != nullptr && caps->is_array()) {
    std::string text;
    for (const auto& cap : caps->as_array()) text += (text.empty() ? "" : ", ") + scalar_text(cap);
    line("Caps", text);
  }
  line("Network", string_of(e, "network"));
  if (const auto* r = e.if_contains("resources"); r != nullptr && r->is_object()) {
    const auto& res = r->as_object();
    double cpus =
        res.contains("cpus") && res.at("cpus").is_number() ? res.at("cpus").to_number<double>() : 0;
    std::int64_t memory =
        res.contains("memory") && res.at("memory").is_int64() ? res.at("memory").as_int64() : 0;
    std::string gpus = string_of(res, "gpus");
    std::string text = fmt::format("cpus {}, memory {}, gpus {}",
                                   cpus > 0 ? fmt::format("{:g}", cpus) : "no limit",
                                   human_memory(memory), gpus.empty() ? "none" : gpus);
    if (std::string cpuset = string_of(res, "cpuset"); !cpuset.empty()) {
      text += ", cpu set " + cpuset;
    }
    if (const auto* shm = res.if_contains("shm_size"); shm != nullptr && shm->is_int64()) {
      text += ", shm " + human_memory(shm->as_int64());
    }
    line("Resources", text);
  }
  auto section = [&](const std::string& title, const std::vector<std::string>& items) {
    out += title + ":" + (items.empty() ? " none\n" : "\n");
    for (const auto& item : items) out += "  " + util::printable(item) + "\n";
  };
  std::vector<std::string> ports;
  if (const auto* p = e.if_contains("ports"); p != nullptr && p->is_array()) {
    for (const auto& item : p->as_array()) {
      if (!item.is_object()) continue;
      const auto& port = item.as_object();
      std::string ip = string_of(port, "host_ip");
      // An IPv6 address in brackets, as envs ls and `docker port` write it.
      if (ip.find(':') != std::string::npos) ip.insert(0, "[").append("]");
      std::string host = scalar_text(port.at("host_port"));
      ports.push_back((ip.empty() ? "" : ip + ":") + (host == "0" ? "*" : host) + " -> " +
                      scalar_text(port.at("container_port")) + "/" + string_of(port, "protocol"));
    }
  }
  section("Ports", ports);
  std::vector<std::string> volumes;
  if (const auto* v = e.if_contains("volumes"); v != nullptr && v->is_array()) {
    for (const auto& item : v->as_array()) {
      if (!item.is_object()) continue;
      const auto& mount = item.as_object();
      std::string source = string_of(mount, "type") == "volume" ? "volume " : "";
      source += string_of(mount, "source");
      const auto* read_only = mount.if_contains("read_only");
      const bool ro = read_only != nullptr && read_only->is_bool() && read_only->as_bool();
      source.append(" -> ").append(string_of(mount, "target"));
      if (ro) source += " (read-only)";
      volumes.push_back(std::move(source));
    }
  }
  section("Volumes", volumes);
  auto pairs = [&](std::string_view key) {
    std::vector<std::string> items;
    if (const auto* o = e.if_contains(key); o != nullptr && o->is_object()) {
      for (const auto& [k, v] : o->as_object())
        items.push_back(std::string(k) + "=" + scalar_text(v));
    }
    return items;
  };
  section("Env", pairs("env"));
  section("Labels", pairs("labels"));
  return out;
}

Status run_describe(Invocation& invocation, const std::string& name, const QueryFlags& flags) {
  auto format = parse_format(flags.format);
  if (!format) return format.error();
  if (auto st = check_utf8("environment name", name); !st) return st;
  auto timeout = runner_timeout(flags.timeout, kQueryTimeout);
  if (!timeout) return timeout.error();
  auto target = resolve_runner(invocation);
  if (!target) return target.error();
  auto found =
      target->driver.inspect(runner_request(*target, *timeout, json::object{{"name", name}}));
  if (!found) return found.error();
  auto parsed = util::parse_json(*found, "the runner's answer");
  if (!parsed) return parsed.error();
  if (*format == OutputFormat::json) {
    fmt::print(util::data_out(), "{}", util::to_pretty_json(*parsed));
    return {};
  }
  fmt::print(util::data_out(), "{}", describe_text(parsed->as_object()));
  return {};
}

// ---- envd down --------------------------------------------------------------

Status run_down(Invocation& invocation, const std::vector<std::string>& names, bool volumes,
                const std::string& timeout_flag) {
  auto timeout = runner_timeout(timeout_flag, kQueryTimeout);
  if (!timeout) return timeout.error();
  for (const auto& name : names) {
    if (auto st = check_utf8("environment name", name); !st) return st;
  }
  if (auto st = refuse_closed_stdout("the names of the removed environments"); !st) return st;
  auto target = resolve_runner(invocation);
  if (!target) return target.error();
  std::vector<Error> failures;
  std::set<std::string> asked;
  for (const auto& name : names) {
    if (!asked.insert(name).second) continue;  // `down a a` removes a once
    // Ctrl-C stops the command: a removal it interrupted may still have
    // been done (and said), but no other is begun.
    if (SignalWatcher::received() != 0) {
      return Error(Errc::cancelled, "interrupted before environment '" + name + "' was removed");
    }
    Status removed = target->driver.remove(
        runner_request(*target, *timeout, json::object{{"name", name}, {"volumes", volumes}}));
    if (removed) {
      fmt::print(util::data_out(), "{}\n", name);
    } else if (removed.error().code() == Errc::cancelled) {
      return removed.error();
    } else {
      failures.push_back(removed.error());
    }
  }
  if (failures.empty()) return {};
  if (failures.size() == 1) return failures.front();
  std::string message =
      fmt::format("{} of {} environments were not removed:", failures.size(), asked.size());
  for (const auto& f : failures) message += " " + f.message() + ";";
  message.pop_back();
  return Error(failures.front().code(), message);
}

}  // namespace

constexpr const char* kVolumeHelp =
    "Mount [SOURCE:]TARGET[:ro|rw]: SOURCE a host directory (/abs or ./rel) or a volume name; "
    "without SOURCE, an anonymous volume (repeatable)";

constexpr const char* kCpuSetHelp = "CPUs the environment may use, e.g. 0-3 or 1,3";
constexpr const char* kShmHelp =
    "Size of /dev/shm, e.g. 2g or 512MiB (default: the runner's; docker and envd-server: 2GiB, as "
    "upstream)";
constexpr const char* kGpusHelp =
    "GPUs as docker run takes them: all, a count, device=ID[,ID...], capabilities=, driver=";
constexpr const char* kRestartHelp =
    "Restart policy: always (default), unless-stopped, on-failure[:MAX-RETRIES], no";
constexpr const char* kCapHelp = "Add a Linux capability, e.g. SYS_PTRACE (repeatable)";

void add_runner_commands(CLI::App& app, Invocation& invocation, Action& action) {
  {
    auto flags = std::make_shared<RunFlags>();
    CLI::App* run = app.add_subcommand(
        "run", "Create and start an environment from an image on the context's runner");
    run->add_option("-i,--image", flags->image, "Image to run")
        ->required()
        ->check(read_by(image_shape));
    run->add_option("-n,--name", flags->name,
                    "Name of the environment (default: from the image's name)");
    // One value per occurrence, as up's: a vector option would otherwise take
    // the command's words that follow it (`-e A=1 sleep 9` set A, sleep and 9).
    run->add_option("-e,--env", flags->env, "Environment variable KEY=VALUE (repeatable)")
        ->allow_extra_args(false)
        ->check(read_by(env_shape));
    run->add_option(
           "-p,--publish", flags->ports,
           "Publish a port [[IP:]HOST:]CONTAINER[/tcp|udp|sctp], ports or ranges (repeatable)")
        ->allow_extra_args(false)
        ->check(read_by(parse_publish));
    run->add_option("-v,--volume", flags->volumes, kVolumeHelp)
        ->allow_extra_args(false)
        ->check(read_by(volume_shape));
    run->add_option("--cpus", flags->cpus, "CPU limit, e.g. 1.5")->check(read_by(parse_cpus));
    run->add_option("--cpu-set,--cpuset-cpus", flags->cpu_set, kCpuSetHelp)
        ->check(read_by(parse_cpu_set));
    run->add_option("--shm-size", flags->shm_size, kShmHelp)
        ->check(size_value())
        ->check(read_by(parse_shm_size));
    run->add_option("--cap-add,--cap", flags->caps, kCapHelp)
        ->allow_extra_args(false)
        ->check(read_by(parse_capability));
    run->add_option("--memory", flags->memory, "Memory limit, e.g. 512MiB or 2g")
        ->check(size_value())
        ->check(read_by(parse_memory));
    run->add_option("--gpus,--gpu-set", flags->gpus, kGpusHelp);
    run->add_option("--restart", flags->restart, kRestartHelp);
    run->add_option("--network", flags->network,
                    "Network mode (default: the runner's; e.g. none, host, bridge)");
    add_runner_timeout_flag(*run, flags->timeout, "the environment to run", "60s");
    run->add_flag("--force", flags->force, "Replace an existing container of the same name");
    run->add_option("command", flags->command,
                    "Command to run instead of the image's (everything after its first word is "
                    "the command's, as in docker run; -- before it is optional)");
    // Once the command starts, the rest of the line is its own: `sh -c X` is
    // not envd's -c (--context), nor is a later -e envd's.
    run->positionals_at_end();
    run->parse_complete_callback([flags] { refuse_shared_targets(flags->volumes); });
    run->callback([&invocation, &action, flags] {
      action = [&invocation, flags] { return run_run(invocation, *flags); };
    });
  }
  {
    auto build = std::make_shared<BuildRequest>();
    auto flags = std::make_shared<RunFlags>();
    flags->network_flag = "--env-network";
    CLI::App* up = app.add_subcommand(
        "up", "Build PATH with the context's builder, then run it on the context's runner");
    add_build_path(up, build->path);
    add_build_flags(up, *build);
    up->get_option("--quiet")->description(
        "Print only the environment's name on stdout (no progress, no messages)");
    const std::string env = "Environment";
    up->add_option("-n,--name", flags->name,
                   "Name of the environment (default: from PATH's directory name)")
        ->group(env);
    up->add_option("-e,--env", flags->env, "Environment variable KEY=VALUE (repeatable)")
        ->allow_extra_args(false)
        ->check(read_by(env_shape))
        ->group(env);
    up->add_option(
          "-p,--publish", flags->ports,
          "Publish a port [[IP:]HOST:]CONTAINER[/tcp|udp|sctp], ports or ranges (repeatable)")
        ->allow_extra_args(false)
        ->check(read_by(parse_publish))
        ->group(env);
    up->add_option("-v,--volume", flags->volumes, kVolumeHelp)
        ->allow_extra_args(false)
        ->check(read_by(volume_shape))
        ->group(env);
    up->add_option("--cpus", flags->cpus, "CPU limit, e.g. 1.5")
        ->check(read_by(parse_cpus))
        ->group(env);
    up->add_option("--cpu-set,--cpuset-cpus", flags->cpu_set, kCpuSetHelp)
        ->check(read_by(parse_cpu_set))
        ->group(env);
    up->add_option("--shm-size", flags->shm_size, kShmHelp)
        ->check(size_value())
        ->check(read_by(parse_shm_size))
        ->group(env);
    up->add_option("--cap-add,--cap", flags->caps, kCapHelp)
        ->allow_extra_args(false)
        ->check(read_by(parse_capability))
        ->group(env);
    up->add_option("--memory", flags->memory, "Memory limit, e.g. 512MiB or 2g")
        ->check(size_value())
        ->check(read_by(parse_memory))
        ->group(env);
    up->add_option("--gpus,--gpu-set", flags->gpus, kGpusHelp)->group(env);
    up->add_option("--restart", flags->restart, kRestartHelp)->group(env);
    // up's --network is the build's (RUN steps), as in envd build.
    up->add_option("--env-network", flags->network,
                   "Network mode of the environment, as run's --network (up's --network is the "
                   "build's)")
        ->group(env);
    add_runner_timeout_flag(*up, flags->timeout, "the environment to run", "60s");
    up->get_option("--timeout")->group(env);
    up->add_flag("--force", flags->force, "Replace an existing environment of the same name")
        ->group(env);
    auto detach = std::make_shared<bool>(false);
    up->add_flag("-d,--detach", *detach,
                 "Do not attach a shell once it runs (up never attaches without a terminal)")
        ->group(env);
    up->parse_complete_callback([flags] { refuse_shared_targets(flags->volumes); });
    up->callback([&invocation, &action, build, flags, detach] {
      action = [&invocation, build, flags, detach] {
        return run_up(invocation, *build, *flags, *detach);
      };
    });
  }
  {
    CLI::App* envs =
        app.add_subcommand("envs", "List and inspect environments on the context's runner");
    envs->require_subcommand(1);
    auto ls_flags = std::make_shared<QueryFlags>();
    CLI::App* ls = envs->add_subcommand("ls", "List environments");
    ls->alias("list");
    ls->add_option("-f,--format", ls_flags->format, "Output format: table or json")
        ->capture_default_str()
        ->check(one_of({"table", "json"}));
    add_runner_timeout_flag(*ls, ls_flags->timeout, "the runner's answer", "30s");
    ls->callback([&invocation, &action, ls_flags] {
      action = [&invocation, ls_flags] { return run_ls(invocation, *ls_flags); };
    });

    auto name = std::make_shared<std::string>();
    auto describe_flags = std::make_shared<QueryFlags>();
    CLI::App* describe =
        envs->add_subcommand("describe", "Show an environment: ports, env, resources, labels");
    describe->add_option("name", *name, "Name of the environment")
        ->required()
        ->check(non_empty_word("an environment name"));
    describe->add_option("-f,--format", describe_flags->format, "Output format: table or json")
        ->capture_default_str()
        ->check(one_of({"table", "json"}));
    add_runner_timeout_flag(*describe, describe_flags->timeout, "the runner's answer", "30s");
    describe->callback([&invocation, &action, name, describe_flags] {
      action = [&invocation, name, describe_flags] {
        return run_describe(invocation, *name, *describe_flags);
      };
    });
    add_logs_command(*envs, invocation, action);
  }
  add_attach_command(app, invocation, action);
  {
    auto names = std::make_shared<std::vector<std::string>>();
    auto volumes = std::make_shared<bool>(false);
    CLI::App* down = app.add_subcommand("down", "Stop and remove environments");
    down->add_option("names", *names, "Names of the environments")
        ->required()
        ->check(non_empty_word("an environment name"));
    down->add_flag("--volumes", *volumes, "Remove their anonymous volumes too");
    auto timeout = std::make_shared<std::string>();
    add_runner_timeout_flag(*down, *timeout, "each environment's removal", "30s");
    down->callback([&invocation, &action, names, volumes, timeout] {
      action = [&invocation, names, volumes, timeout] {
        return run_down(invocation, *names, *volumes, *timeout);
      };
    });
  }
}

}  // namespace envd::cli
