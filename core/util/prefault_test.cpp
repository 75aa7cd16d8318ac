#include "util/prefault.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <vector>

#include <gtest/gtest.h>

namespace envd::util {
namespace {

class FreshPages : public ::testing::Test {
 protected:
  void SetUp() override {
    page_ = static_cast<std::size_t>(::getpagesize());
    size_ = 16 * page_;
    void* p = ::mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ASSERT_NE(p, MAP_FAILED) << std::strerror(errno);
    data_ = static_cast<unsigned char*>(p);
  }
  void TearDown() override {
    if (data_ != nullptr) ::munmap(data_, size_);
  }

  // Which of the 16 pages are present (mincore).
  std::vector<bool> present() const {
    std::vector<unsigned char> bits(16);
    EXPECT_EQ(::mincore(data_, size_, bits.data()), 0) << std::strerror(errno);
    std::vector<bool> out;
    for (unsigned char bit : bits) out.push_back((bit & 1U) != 0);
    return out;
  }

  // Whether this kernel takes MADV_POPULATE_WRITE (Linux 5.14 and later).
  static bool kernel_populates() {
#ifdef MADV_POPULATE_WRITE
    auto page = static_cast<std::size_t>(::getpagesize());
    void* p = ::mmap(nullptr, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return false;
    const bool takes = ::madvise(p, page, MADV_POPULATE_WRITE) == 0;
    ::munmap(p, page);
    return takes;
#else
    return false;
#endif
  }

  std::size_t page_ = 0;
  std::size_t size_ = 0;
  unsigned char* data_ = nullptr;
};

TEST_F(FreshPages, OnlyThePagesWhollyInsideTheRangeAreMadePresent) {
  ASSERT_EQ(present(), std::vector<bool>(16, false));
  prefault_for_writing(data_ + 100, size_ - 200);
  std::vector<bool> expected(16, kernel_populates());
  // The first and the last page are only partly inside: left alone, since
  // they may belong to someone else's memory in a real buffer.
  expected.front() = false;
  expected.back() = false;
  EXPECT_EQ(present(), expected);
}

TEST_F(FreshPages, ContentsWrittenBeforeAreKept) {
  for (std::size_t i = 0; i < size_; ++i) data_[i] = static_cast<unsigned char>(i * 7);
  prefault_for_writing(data_, size_);
  for (std::size_t i = 0; i < size_; ++i) {
    ASSERT_EQ(data_[i], static_cast<unsigned char>(i * 7)) << "byte " << i;
  }
}

TEST_F(FreshPages, LessThanAPageAndEmptyRangesAreLeftAlone) {
  prefault_for_writing(data_ + 1, page_ - 2);
  prefault_for_writing(data_ + page_ - 1, 2);  // across a boundary, no whole page
  prefault_for_writing(data_, 0);
  prefault_for_writing(nullptr, 0);
  EXPECT_EQ(present(), std::vector<bool>(16, false));
}

}  // namespace
}  // namespace envd::util
