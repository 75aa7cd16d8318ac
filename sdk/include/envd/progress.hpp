// Kept for drivers written against SDK 1.1: progress reporting now lives in
// <envd/host.hpp> with the other host services.
#pragma once

#include "envd/host.hpp"
