#include "gpu_request.hpp"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <set>
#include <string_view>
#include <utility>
#include <vector>

#include "envd/csv.hpp"
#include "envd/text.hpp"

namespace envd::plugins::docker_runner {
namespace {

namespace json = boost::json;

// The keys of docker's record.
constexpr std::string_view kKeys[] = {"count", "device", "capabilities", "driver", "options"};

bool is_count(std::string_view text) {
  return text == "all" ||
         (!text.empty() && text.size() <= 4 && std::all_of(text.begin(), text.end(), [](char c) {
           return std::isdigit(static_cast<unsigned char>(c)) != 0;
         }));
}

std::vector<std::string> split_list(std::string_view text) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= text.size()) {
    std::size_t comma = std::min(text.find(',', start), text.size());
    out.emplace_back(text.substr(start, comma - start));
    start = comma + 1;
  }
  return out;
}

std::string joined(const std::vector<std::string>& items, std::string_view separator) {
  std::string out;
  for (const auto& item : items) {
    if (!out.empty()) out += separator;
    out += item;
  }
  return out;
}

}  // namespace

Result<json::array> gpu_device_requests(const std::string& gpus) {
  auto bad = [&gpus](const std::string& why) {
    return Error(Errc::invalid_argument, "gpus '" + sdk::printable(gpus, 200) + "' " + why);
  };
  // The CSV reader's reason, after its "invalid gpus '...': ".
  auto csv_problem = [](const Error& error) {
    const std::string& message = error.message();
    const auto colon = message.rfind("': ");
    return colon == std::string::npos ? message : message.substr(colon + 3);
  };
  auto fields = sdk::split_csv_record(gpus, "gpus");
  if (!fields) {
    if (gpus.find_first_of("\r\n") != std::string::npos) return bad("has a line break");
    const std::string why = csv_problem(fields.error());
    return bad(why == "unterminated quote" ? "has an unterminated quote" : "is not CSV: " + why);
  }

  std::set<std::string, std::less<>> seen;
  std::string count;
  std::vector<std::string> devices;
  std::vector<std::string> capabilities;
  std::string driver;
  json::object options;
  std::vector<std::string>* open_list = nullptr;  // the list a bare field continues
  for (const std::string& field : *fields) {
    std::size_t eq = field.find('=');
    if (eq == std::string::npos) {
      // A bare field: docker's count; or, right after an unquoted device or
      // capability list, the list's next item.
      if (open_list != nullptr && (open_list == &devices || !is_count(field))) {
        open_list->push_back(field);
        continue;
      }
      if (!seen.insert("count").second) return bad("gives a count twice");
      count = field;
      open_list = nullptr;
      continue;
    }
    std::string key = field.substr(0, eq);
    std::string value = field.substr(eq + 1);
    if (std::find(std::begin(kKeys), std::end(kKeys), key) == std::end(kKeys)) {
      return bad("has the key '" + sdk::printable(key, 40) +
                 "', not one of count, device, capabilities, driver or options");
    }
    if (!seen.insert(key).second) return bad("gives " + key + " twice");
    open_list = nullptr;
    if (key == "count") {
      count = value;
    } else if (key == "device") {
      devices = split_list(value);
      open_list = &devices;
    } else if (key == "capabilities") {
      capabilities = split_list(value);
      open_list = &capabilities;
    } else if (key == "driver") {
      if (value.empty()) return bad("names no driver");
      driver = value;
    } else {
      auto pairs = sdk::split_csv_record(value, "gpus options");
      if (!pairs) {
        const std::string why = csv_problem(pairs.error());
        return bad(why == "unterminated quote" ? "has options with an unterminated quote"
                                               : "has options that are not CSV: " + why);
      }
      for (const std::string& pair : *pairs) {
        std::size_t peq = pair.find('=');
        if (peq == 0 || pair.empty()) return bad("has an option without a name");
        options[pair.substr(0, peq)] = peq == std::string::npos ? "" : pair.substr(peq + 1);
      }
    }
  }
  for (const auto* list : {&devices, &capabilities}) {
    if (std::any_of(list->begin(), list->end(), [](const std::string& s) { return s.empty(); })) {
      return bad(std::string("has an empty ") + (list == &devices ? "device ID" : "capability"));
    }
  }

  json::object request{{"Driver", driver}};
  if (seen.count("count") != 0) {
    if (!is_count(count)) {
      return bad("has the count '" + sdk::printable(count, 40) + "', not all or a number of GPUs");
    }
    if (!devices.empty()) return bad("gives both a count and devices; give one");
    if (count == "all") {
      request["Count"] = -1;
    } else if (std::stoi(count) == 0) {
      return bad("asks for no GPU (for GPU 0 give device=0; without --gpus there are none)");
    } else {
      request["Count"] = std::stoi(count);
    }
  } else if (devices.empty()) {
    request["Count"] = 1;  // docker's default for a record without either
  }
  if (!devices.empty()) {
    json::array ids;
    for (const auto& id : devices) ids.emplace_back(id);
    request["DeviceIDs"] = std::move(ids);
  }
  // docker adds `gpu` to what is asked: the NVIDIA driver serves requests
  // for that capability.
  // A capability named twice is asked once: the set is what the driver
  // matches against.
  json::array caps;
  std::set<std::string, std::less<>> asked;
  for (const auto& c : capabilities) {
    if (asked.insert(c).second) caps.emplace_back(c);
  }
  if (asked.count("gpu") == 0) caps.emplace_back("gpu");
  // One set of capabilities, nested: `json::array{caps}` would copy caps
  // itself (list-initialisation from one array is a copy).
  json::array sets;
  sets.emplace_back(std::move(caps));
  request["Capabilities"] = std::move(sets);
  if (!options.empty()) request["Options"] = std::move(options);
  return json::array{std::move(request)};
}

std::string gpus_of(const json::object& host_config) {
  const json::value* v = host_config.if_contains("DeviceRequests");
  if (v == nullptr || !v->is_array() || v->as_array().empty()) return "";
  const json::value& first = v->as_array().front();
  if (!first.is_object()) return "";
  const auto& r = first.as_object();
  auto strings_in = [](const json::value* list) {
    std::vector<std::string> out;
    if (list == nullptr || !list->is_array()) return out;
    for (const auto& item : list->as_array()) {
      if (item.is_string()) out.emplace_back(item.as_string());
    }
    return out;
  };
  std::vector<std::string> parts;
  std::vector<std::string> ids = strings_in(r.if_contains("DeviceIDs"));
  if (!ids.empty()) {
    parts.push_back("device=" + joined(ids, ","));
  } else {
    const json::value* count = r.if_contains("Count");
    std::int64_t n = count != nullptr && count->is_int64() ? count->as_int64() : 0;
    parts.push_back(n < 0 ? std::string("all") : std::to_string(n));
  }
  // The first capability set, without the `gpu` every request carries.
  const json::value* sets = r.if_contains("Capabilities");
  if (sets != nullptr && sets->is_array() && !sets->as_array().empty()) {
    std::vector<std::string> caps = strings_in(&sets->as_array().front());
    caps.erase(std::remove(caps.begin(), caps.end(), "gpu"), caps.end());
    if (!caps.empty()) parts.push_back("capabilities=" + joined(caps, ","));
  }
  const json::value* driver = r.if_contains("Driver");
  if (driver != nullptr && driver->is_string() && !driver->as_string().empty()) {
    parts.push_back("driver=" + std::string(driver->as_string()));
  }
  const json::value* options = r.if_contains("Options");
  if (options != nullptr && options->is_object() && !options->as_object().empty()) {
    std::vector<std::string> pairs;
    for (const auto& [key, value] : options->as_object()) {
      pairs.push_back(std::string(key) + "=" +
                      (value.is_string() ? std::string(value.as_string()) : std::string()));
    }
    parts.push_back("options=" + joined(pairs, ","));
  }
  return sdk::printable(joined(parts, " "), 200);
}

}  // namespace envd::plugins::docker_runner
