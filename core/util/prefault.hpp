// Touching a fresh page of memory costs a page fault: a trap into the kernel
// per 4 KiB, which in a virtual machine costs as much as thousands of
// instructions (10 us a page on the machine of docs/performance.md's
// "Prefaulted buffers"). For a buffer about to be filled, one madvise
// (MADV_POPULATE_WRITE) makes every page of it at once, in half the time.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>

namespace envd::util {

// Makes the pages wholly inside [data, data + size) present and writable,
// keeping their contents. Only for memory the caller owns and is about to
// write. A no-op for less than a page, and where the kernel lacks the advice
// (before Linux 5.14): the pages then fault in one by one as before.
inline void prefault_for_writing(void* data, std::size_t size) {
#ifdef MADV_POPULATE_WRITE
  static const auto kPage = static_cast<std::size_t>(::getpagesize());
  auto begin = (reinterpret_cast<std::uintptr_t>(data) + kPage - 1) & ~(kPage - 1);
  auto end = (reinterpret_cast<std::uintptr_t>(data) + size) & ~(kPage - 1);
  if (end > begin) {
    // NOLINTNEXTLINE(performance-no-int-to-ptr): madvise takes the address.
    (void)::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_POPULATE_WRITE);
  }
#else
  (void)data;
  (void)size;
#endif
}

}  // namespace envd::util
