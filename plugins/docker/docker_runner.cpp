#include "docker_runner.hpp"

#include <algorithm>
#include <boost/json.hpp>
#include <cctype>
#include <chrono>
#include <climits>
#include <cstdint>
#include <optional>
#include <sstream>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "container_io.hpp"
#include "envd/address.hpp"
#include "envd/docker_engine.hpp"
#include "envd/host.hpp"
#include "environment.hpp"

namespace envd::plugins {
namespace {

constexpr std::string_view kSubject = "docker runner address";
constexpr std::string_view kExpected =
    "a Docker Engine endpoint: unix:///path/to/docker.sock, tcp://host:port or "
    "ssh://[user@]host[:port]";

// Why `url`, whose scheme is one of Docker's, is not an endpoint; "" if it is one.
std::string endpoint_problem(sdk::Url& url) {
  if (!url.query.empty()) return "query parameters are not accepted";
  if (url.scheme == "unix") return "";
  if (url.path == "/") url.path.clear();
  if (!url.path.empty()) return "path '" + url.path + "' is not accepted";
  if (url.scheme == "tcp") {
    if (!url.user.empty()) return "a user name is not accepted for tcp://";
    if (!url.port) return "the port is missing";
  }
  return "";
}

namespace json = boost::json;
using Clock = std::chrono::steady_clock;
using docker_runner::environment_of;
using docker_runner::is_environment;

// How long a container must stay running, without a restart, to count as up:
// a command that fails at once is seen exiting rather than reported as running.
constexpr auto kSettle = std::chrono::milliseconds(200);
// After a create that got no answer, how long the container it may have
// made is looked for: the Engine goes on with a create whose client went
// away (the deadline, Ctrl-C, a lost connection), and makes one in tens of
// milliseconds.
constexpr auto kCreateAnswerGrace = std::chrono::seconds(1);
constexpr int kLogLines = 10;

// The Engine the context names: its address if it has one (TLS from the
// environment, as the docker CLI takes it for -H), else DOCKER_HOST's.
Result<sdk::DockerEngine> engine_for(const sdk::Request& request) {
  if (request.address.empty()) return sdk::DockerEngine::from_env();
  auto settings = sdk::docker_settings_for(request.address);
  if (!settings) return settings.error();
  if (settings->tls) return sdk::DockerEngine(std::move(settings->endpoint), *settings->tls);
  return sdk::DockerEngine(std::move(settings->endpoint));
}

std::string where(const sdk::DockerEngine& engine) {
  return "the Docker Engine at " + engine.endpoint().url;
}

// The docker CLI command a hint names: the CLI finds the Engine of the
// environment (DOCKER_HOST, its context) as envd did, unless the context
// names the runner's Engine, which it is then told with -H.
std::string docker_cli(const sdk::Request& request, const sdk::DockerEngine& engine) {
  if (request.address.empty()) return "docker";
  const std::string& url = engine.endpoint().url;
  bool plain = std::all_of(url.begin(), url.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 ||
           std::string_view(":/._@%+=,-[]").find(c) != std::string_view::npos;
  });
  return "docker -H " + (plain ? url : "'" + url + "'");
}

Result<json::object> parse_object(const std::string& text, const std::string& what) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec || !v.is_object())
    return Error(Errc::internal, "the Docker Engine's " + what + " is not JSON");
  return std::move(v.as_object());
}

// How a container is named to the Engine: by the id it gave, or by a name
// that must be the container's exact name.
enum class Lookup { id, exact_name };

// The container's inspect answer, or nullopt when there is none. The Engine
// resolves /containers/{x}/json as a full id, then a name, then an id
// prefix, so a name of hex digits ("cafe", "12") would otherwise find a
// container whose id starts with it: for Lookup::exact_name, an answer for a
// container of another name, or a refusal of an ambiguous prefix (400,
// "multiple IDs found"), means that no container has this name (a name is
// tried before any prefix).
Result<std::optional<json::object>> inspect_container(sdk::DockerEngine& engine,
                                                      const std::string& ref,
                                                      sdk::Deadline deadline,
                                                      Lookup lookup = Lookup::id) {
  const bool by_name = lookup == Lookup::exact_name;
  auto answer = engine.request("GET", "/containers/" + ref + "/json", "", deadline);
  if (!answer) return answer.error();
  if (answer->status == 404) return std::optional<json::object>();
  if (by_name && answer->status == 400) {
    std::string body = answer->body;
    std::transform(body.begin(), body.end(), body.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (body.find("multiple ids found") != std::string::npos) return std::optional<json::object>();
  }
  if (answer->status != 200) return engine.status_error(*answer);
  auto o = parse_object(answer->body, "inspect answer for container '" + ref + "'");
  if (!o) return o.error();
  if (by_name) {
    const json::value* named = o->if_contains("Name");
    if (named == nullptr || !named->is_string() || named->as_string() != "/" + ref) {
      return std::optional<json::object>();
    }
  }
  return std::optional<json::object>(std::move(*o));
}

// The container named exactly `name`, or nullopt.
Result<std::optional<json::object>> inspect_named(sdk::DockerEngine& engine,
                                                  const std::string& name, sdk::Deadline deadline) {
  return inspect_container(engine, name, deadline, Lookup::exact_name);
}

// The environment `name`: Errc::not_found when there is no container of that
// name, or it is not one of envd's.
Result<json::object> find_environment(sdk::DockerEngine& engine, const std::string& name,
                                      sdk::Deadline deadline) {
  auto found = inspect_named(engine, name, deadline);
  if (!found) return found.error();
  if (!*found) return Error(Errc::not_found, "no environment '" + name + "' on " + where(engine));
  if (!is_environment(**found)) {
    // The name is taken, by a container envd did not make.
    return Error(Errc::already_exists, "container '" + name + "' on " + where(engine) +
                                           " is not an envd environment (it has no label " +
                                           docker_runner::kNameLabel + ")");
  }
  return std::move(**found);
}

// The environment name in the request's args ({"name": N}).
Result<std::string> name_arg(const sdk::Request& request) {
  boost::system::error_code ec;
  json::value args = json::parse(request.args_json, ec);
  const json::value* name =
      !ec && args.is_object() ? args.as_object().if_contains("name") : nullptr;
  if (name == nullptr || !name->is_string() || name->as_string().empty()) {
    return Error(Errc::invalid_argument, "no environment name given");
  }
  std::string out(name->as_string());
  if (!sdk::is_docker_container_name(out)) {
    return Error(
        Errc::invalid_argument,
        "environment name '" + out + "' is invalid: it must match [a-zA-Z0-9][a-zA-Z0-9_.-]+");
  }
  return out;
}

bool bool_arg(const sdk::Request& request, std::string_view key) {
  boost::system::error_code ec;
  json::value args = json::parse(request.args_json, ec);
  const json::value* v = !ec && args.is_object() ? args.as_object().if_contains(key) : nullptr;
  return v != nullptr && v->is_bool() && v->as_bool();
}

// The last lines the container printed (its TTY: one stream, \r\n line ends).
std::vector<std::string> last_log_lines(sdk::DockerEngine& engine, const std::string& id,
                                        sdk::Deadline deadline) {
  auto body = engine.call(
      "GET", "/containers/" + id + "/logs?stdout=1&stderr=1&tail=" + std::to_string(kLogLines), "",
      deadline);
  if (!body) return {};
  std::vector<std::string> out;
  std::istringstream in(*body);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    out.push_back(line);
  }
  while (!out.empty() && out.back().empty()) out.pop_back();
  return out;
}

Status remove_container(sdk::DockerEngine& engine, const std::string& id, bool volumes,
                        sdk::Deadline deadline) {
  auto removed = engine.call("DELETE", "/containers/" + id + "?force=1" + (volumes ? "&v=1" : ""),
                             "", deadline);
  if (!removed) return removed.error();
  return {};
}

Error name_in_use(const sdk::DockerEngine& engine, const std::string& name,
                  const json::object& container) {
  std::string id = environment_of(container).at("id").as_string().c_str();
  id = id.substr(0, 12);
  std::string status = environment_of(container).at("status").as_string().c_str();
  return Error(Errc::already_exists, "the name '" + name + "' is in use by container " + id + " (" +
                                         status + ") on " + where(engine) +
                                         ": choose another --name, or replace it with --force");
}

Error missing_image(const sdk::Request& request, const sdk::DockerEngine& engine,
                    const std::string& image) {
  return Error(Errc::not_found, "image '" + image + "' is not on " + where(engine) +
                                    ": build it with 'envd up', or pull it with '" +
                                    docker_cli(request, engine) + " pull " + image + "'");
}

Error exited(sdk::DockerEngine& engine, const std::string& name, const json::object& container,
             sdk::Deadline deadline) {
  json::object env = environment_of(container);
  std::string message = "environment '" + name + "' exited";
  if (env.at("status").as_string() == "running" || env.at("status").as_string() == "restarting") {
    message += " and was restarted";
  } else {
    message += " with code " + std::to_string(env.at("exit_code").as_int64());
  }
  message += " before it was up (remove it with 'envd down " + name + "')";
  if (std::string error(env.at("error").as_string()); !error.empty()) message += ": " + error;
  auto lines = last_log_lines(engine, std::string(env.at("id").as_string()), deadline);
  if (lines.empty()) return Error(Errc::unavailable, message + "; it printed nothing");
  message += "; its last log lines:";
  for (const auto& line : lines) message += "\n  " + line;
  return Error(Errc::unavailable, message);
}

// Polls the started container until it is up, it exits, or the deadline.
Result<json::object> wait_running(sdk::DockerEngine& engine, const std::string& name,
                                  const std::string& id, sdk::Deadline deadline) {
  std::optional<Clock::time_point> running_since;
  auto backoff = std::chrono::milliseconds(20);
  // Ctrl-C removes what this create made, whichever call it interrupts.
  auto cancelled = [&] {
    sdk::IgnoreCancellation cleanup;
    (void)remove_container(engine, id, true, sdk::deadline_after(std::chrono::seconds(10)));
    return sdk::cancelled_error("starting environment '" + name + "'");
  };
  for (;;) {
    auto found = inspect_container(engine, id, deadline);
    if (!found && found.error().code() == Errc::cancelled) return cancelled();
    if (!found) return found.error();
    if (!*found) {
      return Error(Errc::unavailable,
                   "environment '" + name + "' was removed by someone else while it started");
    }
    const json::object& c = **found;
    json::object env = environment_of(c);
    std::string status(env.at("status").as_string());
    std::int64_t restarts = c.contains("RestartCount") && c.at("RestartCount").is_int64()
                                ? c.at("RestartCount").as_int64()
                                : 0;
    if (restarts > 0 || status == "exited" || status == "dead" || status == "restarting") {
      return exited(engine, name, c, deadline);
    }
    if (status == "running") {
      if (!running_since) running_since = Clock::now();
      if (Clock::now() - *running_since >= kSettle) return env;
    }
    // Given up a pause before the deadline: a look after it would be the
    // Engine's call failing at the deadline instead of this answer.
    if (Clock::now() + backoff >= deadline) {
      // Running, but for less than kSettle: not yet seen to stay up.
      std::string message = "environment '";
      message += name;
      if (status == "running") {
        message.append("' is running, but the timeout ended before it had run for the ")
            .append(std::to_string(kSettle.count()))
            .append(" ms envd watches a new environment for an early exit; it is left running ")
            .append("(remove it with 'envd down ")
            .append(name)
            .append("'), or give it longer with --timeout");
      } else {
        message.append("' was not running in time (it is ")
            .append(status)
            .append("; remove it with 'envd down ")
            .append(name)
            .append("', or give it longer with --timeout)");
      }
      return Error(Errc::timeout, message);
    }
    if (!sdk::sleep_unless_cancelled(backoff)) return cancelled();
    backoff = std::min(backoff * 2, std::chrono::milliseconds(100));
  }
}

// Every container (running or not) with the label filter `label` ("KEY" or
// "KEY=VALUE"), as the Engine lists them.
Result<json::array> containers_labelled(sdk::DockerEngine& engine, const std::string& label,
                                        sdk::Deadline deadline) {
  json::object filters{{"label", json::array{label}}};
  auto body =
      engine.call("GET",
                  "/containers/json?" +
                      sdk::format_query({{"all", "1"}, {"filters", json::serialize(filters)}}),
                  "", deadline);
  if (!body) return body.error();
  boost::system::error_code ec;
  json::value listed = json::parse(*body, ec);
  if (ec || !listed.is_array()) {
    return Error(Errc::internal, "the Docker Engine's container list is not a JSON array");
  }
  return std::move(listed.as_array());
}

// The container `create --force` replaces, while it is being replaced.
struct Replaced {
  std::string id;
  std::string name;        // the environment's name, which it holds until set aside
  std::string aside_name;  // the name it has while set aside ("" until then)
  bool was_running = false;
};

// Removes the container(s) a create with this token made (its creation
// label); whether one was found.
Result<bool> remove_made_by(sdk::DockerEngine& engine, const std::string& token,
                            sdk::Deadline deadline) {
  auto listed = containers_labelled(
      engine, std::string(docker_runner::kCreationLabel) + "=" + token, deadline);
  if (!listed) return listed.error();
  bool found = false;
  for (const auto& item : *listed) {
    const json::value* id = item.is_object() ? item.as_object().if_contains("Id") : nullptr;
    if (id == nullptr || !id->is_string()) continue;
    found = true;
    (void)remove_container(engine, std::string(id->as_string()), true, deadline);
  }
  return found;
}

// Gives container `id` the name `name` (a name taken: Errc::already_exists).
Status rename_container(sdk::DockerEngine& engine, const std::string& id, const std::string& name,
                        sdk::Deadline deadline) {
  auto renamed = engine.call(
      "POST", "/containers/" + id + "/rename?" + sdk::format_query({{"name", name}}), "", deadline);
  if (!renamed) return renamed.error();
  return {};
}

// Takes the old container out of the new one's way: stopped (at once, as
// the removal that follows a start would kill it anyway), renamed aside, and
// the new container given the name. On error, restore() undoes what was done.
Status set_aside(sdk::DockerEngine& engine, Replaced& old, const std::string& new_id,
                 const std::string& token, sdk::Deadline deadline) {
  // Another `run --force` of the name that got there first has set the old
  // container aside too, taken the name, and may have removed it already.
  auto taken = [&] {
    return Error(Errc::already_exists, "the name '" + old.name + "' was taken on " + where(engine) +
                                           " by another command meanwhile");
  };
  if (old.was_running) {
    auto stopped = engine.request("POST", "/containers/" + old.id + "/stop?t=0", "", deadline);
    if (!stopped) return stopped.error();
    if (stopped->status == 404) return taken();
    if (stopped->status != 204 && stopped->status != 304) return engine.status_error(*stopped);
  }
  const std::string aside = old.name + "-replaced-" + token.substr(0, 12);
  if (auto st = rename_container(engine, old.id, aside, deadline); !st) {
    return st.error().code() == Errc::not_found ? taken() : st;
  }
  old.aside_name = aside;
  auto named = rename_container(engine, new_id, old.name, deadline);
  if (!named && named.error().code() == Errc::already_exists) return taken();
  return named;
}

// Puts a container set aside back: its name again, and running if it was.
// Errc::not_found when it is gone: another `run --force` of the same name
// set it aside too and, having won the name, removed it.
Status restore(sdk::DockerEngine& engine, const Replaced& old) {
  auto deadline = sdk::deadline_after(std::chrono::seconds(10));
  if (!old.aside_name.empty()) {
    if (auto st = rename_container(engine, old.id, old.name, deadline); !st) {
      // Said as the Engine has it now, not as this command left it: a
      // concurrent replacement may have renamed it again, or removed it.
      auto now = inspect_container(engine, old.id, deadline);
      if (now && !*now) {
        return Error(Errc::not_found, "another command replaced it meanwhile, and removed it");
      }
      std::string kept = old.aside_name;
      if (now) {
        if (const auto* named = (*now)->if_contains("Name");
            named != nullptr && named->is_string()) {
          kept = std::string(named->as_string());
          if (!kept.empty() && kept.front() == '/') kept.erase(0, 1);
        }
      }
      if (st.error().code() == Errc::already_exists) {
        // The message is the aside name alone; undo() says what it means.
        return Error(Errc::already_exists, kept);
      }
      return st.error().wrap("it is kept as '" + kept + "'");
    }
  }
  if (old.was_running) {
    auto started = engine.request("POST", "/containers/" + old.id + "/start", "", deadline);
    if (!started) return started.error();
    if (started->status == 404) {
      return Error(Errc::not_found, "another command replaced it meanwhile, and removed it");
    }
    if (started->status != 204 && started->status != 304) return engine.status_error(*started);
  }
  return {};
}

}  // namespace

// The spec and the Engine's address, as create reads them; no Engine call.
Status DockerRunner::check_create(const sdk::Request& request) {
  auto spec = docker_runner::parse_spec(request.args_json);
  if (!spec) return spec.error();
  auto engine = engine_for(request);
  if (!engine) return engine.error();
  return {};
}

Result<std::string> DockerRunner::create(const sdk::Request& request) {
  auto spec = docker_runner::parse_spec(request.args_json);
  if (!spec) return spec.error();
  auto engine = engine_for(request);
  if (!engine) return engine.error();
  auto deadline = sdk::deadline_after(request.timeout);
  const std::string& name = spec->name;

  auto image = engine->request("GET", "/images/" + spec->image + "/json", "", deadline);
  if (!image) return image.error();
  if (image->status == 404) return missing_image(request, *engine, spec->image);
  if (image->status != 200) return engine->status_error(*image);

  auto existing = inspect_named(*engine, name, deadline);
  if (!existing) return existing.error();
  std::optional<Replaced> replaced;
  if (*existing) {
    if (!spec->force) return name_in_use(*engine, name, **existing);
    // By id: the name, if the container went meanwhile, could be taken by
    // the Engine for another container's id prefix.
    json::object old = environment_of(**existing);
    replaced = Replaced{
        std::string(old.at("id").as_string()), name, {}, old.at("status").as_string() == "running"};
  }

  const std::string token = sdk::creation_token();
  json::object body = docker_runner::container_body(*spec);
  body["Labels"].as_object()[docker_runner::kCreationLabel] = token;
  // A replacement is made without a name and takes the name only once it is
  // made and the old container is set aside: an Engine refusing the new one
  // (a memory limit, a network, a device) leaves the old one as it was.
  const std::string query = replaced ? "" : "?" + sdk::format_query({{"name", name}});
  auto created =
      engine->request("POST", "/containers/create" + query, json::serialize(body), deadline);
  if (!created) {
    // No answer: the request may have reached the Engine, which then makes
    // the container anyway. What it made for this create (the token) is
    // looked for a moment and removed; another envd's is left alone.
    sdk::IgnoreCancellation cleanup;
    const auto until = Clock::now() + kCreateAnswerGrace;
    for (;;) {
      auto found = remove_made_by(*engine, token, sdk::deadline_after(std::chrono::seconds(5)));
      if ((found && *found) || Clock::now() >= until) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return created.error();
  }
  if (created->status == 404) return missing_image(request, *engine, spec->image);
  if (created->status == 409 && !replaced) {
    auto now = inspect_named(*engine, name, deadline);
    if (now && *now) return name_in_use(*engine, name, **now);
    // The Engine reserves a name before the container can be inspected:
    // another command is creating one of this name at this moment.
    return Error(Errc::already_exists,
                 "the name '" + name + "' was taken on " + where(*engine) +
                     " by another command while this environment was being created: choose "
                     "another --name, or replace it with --force");
  }
  if (created->status != 201 && created->status != 200) {
    return engine->status_error(*created).wrap("cannot create environment '" + name + "'");
  }
  auto answer = parse_object(created->body, "answer to container create");
  if (!answer) return answer.error();
  std::string id = answer->contains("Id") && answer->at("Id").is_string()
                       ? std::string(answer->at("Id").as_string())
                       : name;
  // Undoes this create: the new container goes, the replaced one comes back.
  auto undo = [&](const Error& error) -> Error {
    sdk::IgnoreCancellation cleanup;
    (void)remove_container(*engine, id, true, sdk::deadline_after(std::chrono::seconds(10)));
    if (!replaced) return error;
    if (auto st = restore(*engine, *replaced); !st) {
      if (st.error().code() == Errc::not_found) {
        return Error(error.code(), error.message() + "; the container it was to replace is gone: " +
                                       st.error().message());
      }
      if (st.error().code() == Errc::already_exists) {
        // Another command has the name. If it is another `run --force` of
        // it, which set the same container aside, it removes that container
        // once its own has started.
        return Error(error.code(),
                     error.message() + "; the container it was to replace is left as '" +
                         st.error().message() + "' (a concurrent --force of that name removes it)");
      }
      return Error(error.code(), error.message() + "; and the container it was to replace could " +
                                     "not be put back: " + st.error().message());
    }
    return error;
  };
  if (sdk::cancelled()) {
    // Stopped while the Engine created it: what was made is undone.
    return undo(sdk::cancelled_error("creating environment '" + name + "'"));
  }
  if (replaced) {
    sdk::report_progress("replacing the existing container '" + name + "'");
    if (auto st = set_aside(*engine, *replaced, id, token, deadline); !st) {
      return undo(st.error().wrap("cannot replace container '" + name + "'"));
    }
  }

  if (auto started = engine->call("POST", "/containers/" + id + "/start", "", deadline); !started) {
    if (started.error().code() == Errc::cancelled) {
      return undo(sdk::cancelled_error("starting environment '" + name + "'"));
    }
    return undo(started.error().wrap("cannot start environment '" + name + "'"));
  }
  if (replaced) {
    // Removed as `docker rm -f` does: its anonymous volumes are kept
    // (`envd down --volumes` is how an environment's go with it).
    sdk::IgnoreCancellation cleanup;
    if (auto st = remove_container(*engine, replaced->id, false,
                                   sdk::deadline_after(std::chrono::seconds(10)));
        !st) {
      sdk::report_progress("the replaced container is kept as '" + replaced->aside_name +
                           "': " + st.error().message());
    }
  }
  sdk::report_progress("waiting for environment '" + name + "' to run");
  auto env = wait_running(*engine, name, id, deadline);
  if (!env) return env.error();
  return json::serialize(*env);
}

Result<std::string> DockerRunner::list(const sdk::Request& request) {
  auto engine = engine_for(request);
  if (!engine) return engine.error();
  auto deadline = sdk::deadline_after(request.timeout);
  auto listed = containers_labelled(*engine, docker_runner::kNameLabel, deadline);
  if (!listed) return listed.error();
  json::array out;
  for (const auto& item : *listed) {
    if (!item.is_object() || !item.as_object().contains("Id")) continue;
    const json::value& id = item.as_object().at("Id");
    if (!id.is_string()) continue;
    auto found = inspect_container(*engine, std::string(id.as_string()), deadline);
    if (!found) return found.error();
    if (*found && is_environment(**found)) out.push_back(environment_of(**found));
  }
  std::sort(out.begin(), out.end(), [](const json::value& a, const json::value& b) {
    const auto& x = a.as_object();
    const auto& y = b.as_object();
    return std::make_pair(x.at("created").as_string(), x.at("name").as_string()) <
           std::make_pair(y.at("created").as_string(), y.at("name").as_string());
  });
  return json::serialize(out);
}

Result<std::string> DockerRunner::inspect(const sdk::Request& request) {
  auto name = name_arg(request);
  if (!name) return name.error();
  auto engine = engine_for(request);
  if (!engine) return engine.error();
  auto found = find_environment(*engine, *name, sdk::deadline_after(request.timeout));
  if (!found) return found.error();
  return json::serialize(environment_of(*found));
}

Status DockerRunner::remove(const sdk::Request& request) {
  auto name = name_arg(request);
  if (!name) return name.error();
  auto engine = engine_for(request);
  if (!engine) return engine.error();
  auto deadline = sdk::deadline_after(request.timeout);
  auto found = find_environment(*engine, *name, deadline);
  if (!found) return found.error();
  std::string id(found->at("Id").as_string());
  auto removed = remove_container(*engine, id, bool_arg(request, "volumes"), deadline);
  if (!removed && removed.error().code() == Errc::already_exists) {
    // The Engine's 409: another `envd down` (or docker rm) is removing it.
    return Error(Errc::already_exists,
                 "environment '" + *name + "' is already being removed (by another command)");
  }
  if (!removed && removed.error().code() == Errc::not_found) {
    // Another command removed it between the look and the removal.
    return Error(Errc::not_found,
                 "environment '" + *name + "' was removed meanwhile (by another command)");
  }
  if (!removed && removed.error().code() == Errc::cancelled) {
    // The Engine goes on with a DELETE whose client left: whether it is
    // done is looked up, so a removed environment is not said to be kept.
    // Stopping the container first takes the Engine a moment: looked for
    // up to two seconds.
    sdk::IgnoreCancellation look;
    const auto until = sdk::deadline_after(std::chrono::seconds(2));
    for (;;) {
      auto still = inspect_container(*engine, id, until);
      if (still && !*still) return {};
      if (!still || Clock::now() + std::chrono::milliseconds(100) >= until) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return Error(Errc::cancelled, "removing environment '" + *name +
                                      "' was interrupted; the Docker Engine may still remove it");
  }
  if (!removed) return removed.error().wrap("cannot remove environment '" + *name + "'");
  return {};
}

namespace {

// A non-negative integer arg ("tail"), nullopt when absent.
Result<std::optional<int>> count_arg(const sdk::Request& request, std::string_view key) {
  boost::system::error_code ec;
  json::value args = json::parse(request.args_json, ec);
  const json::value* v = !ec && args.is_object() ? args.as_object().if_contains(key) : nullptr;
  if (v == nullptr || v->is_null()) return std::optional<int>();
  if (!v->is_int64() || v->as_int64() < 0 || v->as_int64() > INT32_MAX) {
    return Error(Errc::invalid_argument, "'" + std::string(key) + "' must be a count of lines");
  }
  return std::optional<int>(static_cast<int>(v->as_int64()));
}

// The shell to attach with: args "shell" (an argv), else bash where the image
// has it and sh otherwise.
Result<std::vector<std::string>> shell_arg(const sdk::Request& request) {
  boost::system::error_code ec;
  json::value args = json::parse(request.args_json, ec);
  const json::value* v = !ec && args.is_object() ? args.as_object().if_contains("shell") : nullptr;
  if (v == nullptr || v->is_null()) {
    return std::vector<std::string>{
        "/bin/sh", "-c", "if command -v bash >/dev/null 2>&1; then exec bash; fi; exec sh"};
  }
  std::vector<std::string> shell;
  if (v->is_array()) {
    for (const auto& word : v->as_array()) {
      if (!word.is_string()) return Error(Errc::invalid_argument, "'shell' must be strings");
      shell.emplace_back(word.as_string());
    }
  }
  if (shell.empty() || shell.front().empty()) {
    return Error(Errc::invalid_argument, "'shell' must name a program");
  }
  return shell;
}

bool has_tty(const json::object& container) {
  const json::value* config = container.if_contains("Config");
  const json::value* tty =
      config != nullptr && config->is_object() ? config->as_object().if_contains("Tty") : nullptr;
  return tty != nullptr && tty->is_bool() && tty->as_bool();
}

}  // namespace

Status DockerRunner::logs(const sdk::Request& request, const sdk::Stdio& stdio) {
  auto name = name_arg(request);
  if (!name) return name.error();
  auto tail = count_arg(request, "tail");
  if (!tail) return tail.error();
  auto engine = engine_for(request);
  if (!engine) return engine.error();
  bool follow = bool_arg(request, "follow");
  // No timeout (a followed log unless the user gave one) is no deadline: it
  // ends with the container or Ctrl-C. Finding the container is still bounded.
  const bool bounded = request.timeout.count() > 0;
  auto deadline = sdk::deadline_after(bounded ? request.timeout : std::chrono::hours(24 * 365));
  auto found = find_environment(*engine, *name,
                                bounded ? deadline : sdk::deadline_after(std::chrono::seconds(30)));
  if (!found) return found.error();
  docker_runner::LogsOptions options{follow, *tail, has_tty(*found)};
  return docker_runner::stream_logs(*engine, std::string(found->at("Id").as_string()), options,
                                    stdio, deadline);
}

Result<int> DockerRunner::attach(const sdk::Request& request, const sdk::Stdio& stdio) {
  auto name = name_arg(request);
  if (!name) return name.error();
  auto shell = shell_arg(request);
  if (!shell) return shell.error();
  auto engine = engine_for(request);
  if (!engine) return engine.error();
  auto deadline =
      sdk::deadline_after(request.timeout.count() > 0 ? request.timeout : std::chrono::seconds(30));
  auto found = find_environment(*engine, *name, deadline);
  if (!found) return found.error();
  json::object env = environment_of(*found);
  const std::string status(env.at("status").as_string());
  if (status == "paused") {
    return Error(Errc::unavailable, "environment '" + *name + "' is paused: resume it with '" +
                                        docker_cli(request, *engine) + " unpause " + *name +
                                        "', then attach");
  }
  if (status != "running") {
    return Error(Errc::unavailable,
                 "environment '" + *name + "' is " + status +
                     ", not running: see 'envd envs logs " + *name +
                     "', or start it again with 'envd up' or 'envd run --force'");
  }
  return docker_runner::attach_shell(*engine, std::string(found->at("Id").as_string()), *shell,
                                     stdio, deadline);
}

Result<std::string> DockerRunner::normalize_address(const std::string& address) const {
  if (address.empty()) return std::string();
  std::string scheme = sdk::scheme_of(address);
  if (!scheme.empty() && scheme != "unix" && scheme != "tcp" && scheme != "ssh") {
    return sdk::address_error(
        kSubject, address, "scheme '" + scheme + "://' is not a Docker Engine endpoint", kExpected);
  }
  auto url = sdk::parse_url(address);
  if (!url) return sdk::address_error(kSubject, address, url.error().message(), kExpected);
  if (std::string problem = endpoint_problem(*url); !problem.empty()) {
    return sdk::address_error(kSubject, address, problem, kExpected);
  }
  return url->to_string();
}

}  // namespace envd::plugins
