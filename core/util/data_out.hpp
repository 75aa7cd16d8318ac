// Where envd's data goes: the standard output the user gave it, on a
// descriptor of its own.
//
// Driver modules run inside envd's process, so whatever one prints (a
// printf left in for debugging, a library that logs to stdout) would land in
// the middle of `envd envs ls --format json` or a tarball on stdout. The
// scanner refuses a module that prints as it loads; what a verb prints later
// is kept out of the data here: main() moves the user's standard output to a
// descriptor of its own and points descriptor 1 at stderr, and the core
// writes its data through data_out() and data_fd() alone (scripts/lint.sh
// checks that no core file writes to stdout).
#pragma once

#include <cstdio>

namespace envd::util {

// Moves the user's standard output to a new close-on-exec descriptor and
// points descriptor 1 at stderr. Once, before any module is loaded; later
// calls do nothing. Should a step fail (no descriptor left), data stays on
// descriptor 1, as without it (unit tests): data_out() is stdout and
// data_fd() is 1.
void keep_data_apart();

// Puts the user's standard output back on descriptor 1, for a program that
// replaces envd (envd-client) or inherits its descriptors. Idempotent; after
// it data_out() and data_fd() are stdout and 1 again.
void put_data_back();

// The stream and the descriptor data is written to. Flush data_out() before
// writing to data_fd() directly.
std::FILE* data_out();
int data_fd();

}  // namespace envd::util
