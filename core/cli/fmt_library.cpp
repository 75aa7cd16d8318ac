// fmt's compiled part, built from Debian's fmt headers for the envd program
// alone, so that it links libstdc++ statically and maps neither libfmt.so nor
// libstdc++.so at start-up (core/cli/CMakeLists.txt, ENVD_STATIC_CXX_RUNTIME;
// docs/performance.md, "The C++ library linked into envd"). Debian ships no
// libfmt.a, and fmt's header-only mode would compile all of this into every
// file that includes it.
//
// format-inl.h defines fmt's non-template functions (vformat, vprint, ...).
// format.h declares four templates extern, defined only where the library is
// built; these are the two of them a char-only program uses (a use of the
// wchar_t ones fails at link time, not at run time).
#include <fmt/format-inl.h>

FMT_BEGIN_NAMESPACE
namespace detail {

template auto thousands_sep_impl<char>(locale_ref) -> thousands_sep_result<char>;
template auto decimal_point_impl(locale_ref) -> char;

}  // namespace detail
FMT_END_NAMESPACE
