// Private to the SDK (never installed): what a credential helper's answer
// means, apart from running it, so the answer can be tested (and fuzzed) on
// its own.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>

#include "envd/process.hpp"
#include "envd/registry_auth.hpp"
#include "envd/result.hpp"

namespace envd::sdk {

// The most of a helper's stdout (and of its stderr) read: a credential is a
// few KiB, and a helper that writes without end is stopped there.
constexpr size_t kMaxHelperOutput = size_t{1} << 20;

// What one run of `docker-credential-<helper> get` for config key `key`
// answered: the credentials of its {"Username","Secret"} (Username "<token>"
// means an identity token), none when it says "credentials not found", else
// an Error. Messages quote the helper's output printably, on one line, and
// never the secret of an answer that succeeded.
Result<RegistryCredentials> helper_answer(const std::string& helper, const std::string& key,
                                          const ProcessResult& ran,
                                          std::chrono::milliseconds timeout);

}  // namespace envd::sdk
