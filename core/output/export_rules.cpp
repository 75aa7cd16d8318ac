#include "output/export_rules.hpp"

#include "output/image_push.hpp"

namespace envd::output {
namespace {

std::vector<std::string> split_names(const std::string& names) {
  std::vector<std::string> out;
  for (size_t start = 0;;) {
    size_t comma = names.find(',', start);
    std::string name = names.substr(start, comma - start);
    if (!name.empty()) out.push_back(name);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

}  // namespace

Result<ExportChoice> choose_export(const OutputSpec* output, const std::string& tag,
                                   bool daemon_has_moby_worker, std::string_view builder) {
  ExportChoice choice;
  if (output == nullptr) {
    if (daemon_has_moby_worker) {
      choice.exporter = {"moby", {{"name", tag}}};
    } else {
      choice.exporter = {"docker", {{"name", tag}}};
      choice.load_into_engine = true;
    }
    return choice;
  }
  choice.exporter = {output->type, output->attrs};
  auto& attrs = choice.exporter.attrs;
  // As buildx: an image in a tarball is tagged with them too, so what
  // `docker load` makes is the image the success line names.
  if ((output->type == "image" || output->type == "moby" || output->type == "docker" ||
       output->type == "oci") &&
      !attrs.count("name")) {
    attrs["name"] = tag;
  }
  // BuildKit v0.8 inside dockerd has no `image` exporter and cannot push.
  if (output->type == "image" && builder == "moby-worker") {
    choice.exporter.type = "moby";
    if (auto push = attrs.find("push"); push != attrs.end()) {
      if (attribute_is_true(push->second)) choice.push_names = split_names(attrs.at("name"));
      attrs.erase(push);
    }
    for (const auto& name : choice.push_names) {
      if (auto ref = parse_push_reference(name); !ref) return ref.error();
    }
  }
  return choice;
}

}  // namespace envd::output
