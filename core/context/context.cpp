#include "context/context.hpp"

#include <algorithm>
#include <cstdint>
#include <random>

#include "util/text.hpp"

namespace envd::context {
namespace {

constexpr std::size_t kMaxNameLength = 64;

bool is_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

}  // namespace

Context* ContextList::find(std::string_view name) {
  auto it = std::find_if(contexts.begin(), contexts.end(),
                         [&](const Context& c) { return c.name == name; });
  return it == contexts.end() ? nullptr : &*it;
}

const Context* ContextList::find(std::string_view name) const {
  return const_cast<ContextList*>(this)->find(name);
}

Context default_context() {
  Context ctx;
  ctx.name = "default";
  ctx.builder = "docker-container";
  ctx.builder_address = "envd_buildkitd";
  ctx.runner = "docker";
  return ctx;
}

Status validate_name(std::string_view name) {
  bool ok = !name.empty() && name.size() <= kMaxNameLength && is_alnum(name.front()) &&
            std::all_of(name.begin(), name.end(), [](char c) {
              return is_alnum(c) || c == '_' || c == '.' || c == '+' || c == '-';
            });
  if (ok) return {};
  return Error(Errc::invalid_argument, "invalid context name '" + util::printable(name, 80) +
                                           "': " + std::string(kNameRule));
}

std::string new_context_id() {
  // A fresh device per call: no generator state is shared with a forked child.
  std::random_device device;
  std::uint64_t bits = (static_cast<std::uint64_t>(device()) << 32) | device();
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id(16, '0');
  for (int i = 15; i >= 0; --i) {
    id[static_cast<std::size_t>(i)] = kHex[bits & 0xf];
    bits >>= 4;
  }
  return id;
}

}  // namespace envd::context
