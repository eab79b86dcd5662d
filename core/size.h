// Byte sizes as people write them in job specs and profiles ("80GiB",
// "512 MiB", "80GB") and as tools print them. Pure functions; safe from any
// thread.
#ifndef CHRONOS_CORE_SIZE_H_
#define CHRONOS_CORE_SIZE_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace chronos {

// Parses a non-negative byte count: a number, optional spaces, and an
// optional unit. Units are case-insensitive: B; KiB MiB GiB TiB PiB (powers
// of 1024, also written Ki Mi Gi Ti Pi as Kubernetes does); KB MB GB TB PB
// (powers of 1000). Fractions are allowed with a unit ("1.5GiB") and rounded
// to the nearest byte; a bare or B-suffixed count must be whole.
// kInvalidArgument for negative, malformed or out-of-range input; the
// message quotes the input.
absl::StatusOr<int64_t> ParseByteSize(absl::string_view text);

// Human-readable, lossy: "0 B", "512 B", "1.50 KiB", "80.00 GiB" (binary
// units, two decimals). For tables and logs.
std::string FormatBytes(int64_t bytes);

// Exact and parseable by ParseByteSize: the largest binary unit that divides
// `bytes` evenly ("80GiB", "1536MiB"), else the bare count ("1000"). For
// files that are read back, such as JobSpecToYaml.
std::string FormatByteSize(int64_t bytes);

}  // namespace chronos

#endif  // CHRONOS_CORE_SIZE_H_
