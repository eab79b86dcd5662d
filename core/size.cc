#include "core/size.h"

#include <cmath>
#include <cstdlib>
#include <limits>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace chronos {
namespace {

struct Unit {
  const char* name;  // lower case
  int64_t bytes;
};

constexpr int64_t kKi = int64_t{1} << 10;
constexpr int64_t kMi = int64_t{1} << 20;
constexpr int64_t kGi = int64_t{1} << 30;
constexpr int64_t kTi = int64_t{1} << 40;
constexpr int64_t kPi = int64_t{1} << 50;

// Bare "k", "m", "g" are left out on purpose: with case-insensitive units
// "m" could be read as Kubernetes' milli or as mega.
constexpr Unit kUnits[] = {
    {"", 1},
    {"b", 1},
    {"kb", 1000},
    {"mb", 1000 * 1000},
    {"gb", 1000LL * 1000 * 1000},
    {"tb", 1000LL * 1000 * 1000 * 1000},
    {"pb", 1000LL * 1000 * 1000 * 1000 * 1000},
    {"kib", kKi},
    {"ki", kKi},
    {"mib", kMi},
    {"mi", kMi},
    {"gib", kGi},
    {"gi", kGi},
    {"tib", kTi},
    {"ti", kTi},
    {"pib", kPi},
    {"pi", kPi},
};

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

}  // namespace

absl::StatusOr<int64_t> ParseByteSize(absl::string_view text) {
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("invalid byte size '", text, "': ", why));
  };
  absl::string_view s = absl::StripAsciiWhitespace(text);
  if (s.empty()) return bad("empty");
  if (s[0] == '-') return bad("must not be negative");
  if (s[0] == '+') s.remove_prefix(1);

  // Number: digits with at most one '.', then an optional exponent. An 'e'
  // only starts an exponent when a digit follows, so "1EB" fails as an
  // unknown unit instead of as a malformed exponent.
  size_t i = 0;
  bool has_digit = false;
  bool fractional = false;
  while (i < s.size() && (IsDigit(s[i]) || (s[i] == '.' && !fractional))) {
    if (s[i] == '.') fractional = true;
    has_digit |= IsDigit(s[i]);
    ++i;
  }
  if (!has_digit) return bad("expected a number followed by a unit");
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    size_t j = i + 1;
    if (j < s.size() && (s[j] == '+' || s[j] == '-')) ++j;
    if (j < s.size() && IsDigit(s[j])) {
      while (j < s.size() && IsDigit(s[j])) ++j;
      i = j;
      fractional = true;  // parse through long double below
    }
  }
  const std::string number(s.substr(0, i));
  const std::string unit = absl::AsciiStrToLower(absl::StripAsciiWhitespace(s.substr(i)));

  int64_t multiplier = 0;
  for (const Unit& u : kUnits) {
    if (unit == u.name) multiplier = u.bytes;
  }
  if (multiplier == 0) {
    return bad(
        absl::StrCat("unknown unit '", unit, "' (use B, KiB, MiB, GiB, TiB, KB, MB, GB or TB)"));
  }

  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  if (!fractional) {
    int64_t value = 0;
    if (!absl::SimpleAtoi(number, &value)) return bad("out of range");
    if (value > kMax / multiplier) return bad("out of range");
    return value * multiplier;
  }
  const long double value = std::strtold(number.c_str(), nullptr) * multiplier;
  // 2^63 is exactly representable; anything at or above it overflows.
  if (!std::isfinite(value) || value >= 9223372036854775808.0L) {
    return bad("out of range");
  }
  if (multiplier == 1 && value != std::floor(value)) {
    return bad("a byte count must be a whole number");
  }
  return static_cast<int64_t>(std::llround(value));
}

std::string FormatBytes(int64_t bytes) {
  // Work on the magnitude as unsigned so that INT64_MIN does not overflow.
  const bool negative = bytes < 0;
  const uint64_t magnitude =
      negative ? ~static_cast<uint64_t>(bytes) + 1 : static_cast<uint64_t>(bytes);
  const char* sign = negative ? "-" : "";
  if (magnitude < 1024) return absl::StrCat(sign, magnitude, " B");
  static constexpr const char* kNames[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  double value = static_cast<double>(magnitude) / 1024.0;
  int index = 0;
  while (value >= 1024.0 && index < 5) {
    value /= 1024.0;
    ++index;
  }
  return absl::StrFormat("%s%.2f %s", sign, value, kNames[index]);
}

std::string FormatByteSize(int64_t bytes) {
  static constexpr struct {
    int64_t bytes;
    const char* name;
  } kExact[] = {{kPi, "PiB"}, {kTi, "TiB"}, {kGi, "GiB"}, {kMi, "MiB"}, {kKi, "KiB"}};
  if (bytes > 0) {
    for (const auto& u : kExact) {
      if (bytes % u.bytes == 0) return absl::StrCat(bytes / u.bytes, u.name);
    }
  }
  return absl::StrCat(bytes);
}

}  // namespace chronos
