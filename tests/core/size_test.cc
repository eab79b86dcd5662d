#include "core/size.h"

#include <cstdint>
#include <limits>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace chronos {
namespace {

using ::testing::HasSubstr;

constexpr int64_t kKiB = int64_t{1} << 10;
constexpr int64_t kMiB = int64_t{1} << 20;
constexpr int64_t kGiB = int64_t{1} << 30;
constexpr int64_t kTiB = int64_t{1} << 40;

int64_t Parse(absl::string_view text) {
  absl::StatusOr<int64_t> v = ParseByteSize(text);
  EXPECT_TRUE(v.ok()) << text << ": " << v.status();
  return v.value_or(-1);
}

TEST(SizeParseTest, BinaryUnits) {
  EXPECT_EQ(Parse("80GiB"), 80 * kGiB);
  EXPECT_EQ(Parse("80 GiB"), 80 * kGiB);
  EXPECT_EQ(Parse("512MiB"), 512 * kMiB);
  EXPECT_EQ(Parse("4KiB"), 4 * kKiB);
  EXPECT_EQ(Parse("2TiB"), 2 * kTiB);
  EXPECT_EQ(Parse("16Gi"), 16 * kGiB);  // Kubernetes spelling
}

TEST(SizeParseTest, DecimalUnits) {
  EXPECT_EQ(Parse("80GB"), 80'000'000'000);
  EXPECT_EQ(Parse("1KB"), 1000);
  EXPECT_EQ(Parse("3MB"), 3'000'000);
  EXPECT_EQ(Parse("1TB"), 1'000'000'000'000);
}

TEST(SizeParseTest, UnitsAreCaseInsensitive) {
  EXPECT_EQ(Parse("80gib"), 80 * kGiB);
  EXPECT_EQ(Parse("80GIB"), 80 * kGiB);
  EXPECT_EQ(Parse("80gb"), 80'000'000'000);
  EXPECT_EQ(Parse("7b"), 7);
}

TEST(SizeParseTest, FractionsAreRoundedToBytes) {
  EXPECT_EQ(Parse("1.5GiB"), 3 * kGiB / 2);
  EXPECT_EQ(Parse("0.5KB"), 500);
  EXPECT_EQ(Parse("1e3MB"), 1'000'000'000);
}

TEST(SizeParseTest, BareCountsAndSurroundingSpace) {
  EXPECT_EQ(Parse("1024"), 1024);
  EXPECT_EQ(Parse("1024B"), 1024);
  EXPECT_EQ(Parse("0"), 0);
  EXPECT_EQ(Parse("  64 MiB  "), 64 * kMiB);
  EXPECT_EQ(Parse("9223372036854775807"), std::numeric_limits<int64_t>::max());
}

TEST(SizeParseTest, RejectsNegativeGarbageAndOverflow) {
  for (const char* bad :
       {"-1GiB", "-5", "", "   ", "GiB", "abc", "1.5", "1.5B", "12XB", "1EB", "1..5GiB",
        "1 GiB extra", "9999999TiB", "9223372036854775808", "1e30GB", "0x10", "1,000"}) {
    absl::StatusOr<int64_t> v = ParseByteSize(bad);
    EXPECT_FALSE(v.ok()) << "'" << bad << "' parsed as " << *v;
    if (!v.ok()) {
      EXPECT_EQ(v.status().code(), absl::StatusCode::kInvalidArgument);
      EXPECT_THAT(v.status().message(), HasSubstr(absl::StrCat("'", bad, "'")));
    }
  }
  EXPECT_THAT(ParseByteSize("-1GiB").status().message(), HasSubstr("negative"));
  EXPECT_THAT(ParseByteSize("12XB").status().message(), HasSubstr("unknown unit 'xb'"));
}

TEST(SizeFormatTest, HumanReadable) {
  EXPECT_EQ(FormatBytes(0), "0 B");
  EXPECT_EQ(FormatBytes(512), "512 B");
  EXPECT_EQ(FormatBytes(1023), "1023 B");
  EXPECT_EQ(FormatBytes(1024), "1.00 KiB");
  EXPECT_EQ(FormatBytes(1536), "1.50 KiB");
  EXPECT_EQ(FormatBytes(3 * kGiB / 2), "1.50 GiB");
  EXPECT_EQ(FormatBytes(80 * kGiB), "80.00 GiB");
  EXPECT_EQ(FormatBytes(-2048), "-2.00 KiB");
  EXPECT_EQ(FormatBytes(std::numeric_limits<int64_t>::min()), "-8.00 EiB");
}

TEST(SizeFormatTest, ExactFormRoundTrips) {
  EXPECT_EQ(FormatByteSize(80 * kGiB), "80GiB");
  EXPECT_EQ(FormatByteSize(1536 * kMiB), "1536MiB");
  EXPECT_EQ(FormatByteSize(1000), "1000");
  EXPECT_EQ(FormatByteSize(0), "0");
  for (int64_t v : {int64_t{0}, int64_t{1}, int64_t{1000}, 3 * kGiB / 2, 80 * kGiB, 5 * kTiB + kKiB,
                    std::numeric_limits<int64_t>::max()}) {
    EXPECT_EQ(Parse(FormatByteSize(v)), v) << FormatByteSize(v);
  }
}

}  // namespace
}  // namespace chronos
