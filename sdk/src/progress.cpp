#include "envd/progress.hpp"

#include <mutex>

namespace envd::sdk {
namespace {

// One handler for the whole process: the SDK library is loaded once, whichever
// module reports.
std::mutex handler_mutex;
ProgressHandler current_handler = nullptr;
void* current_user = nullptr;

}  // namespace

void report_progress(std::string_view line) {
  std::lock_guard lock(handler_mutex);
  if (current_handler != nullptr) current_handler(line, current_user);
}

void set_progress_handler(ProgressHandler handler, void* user) {
  std::lock_guard lock(handler_mutex);
  current_handler = handler;
  current_user = user;
}

}  // namespace envd::sdk
