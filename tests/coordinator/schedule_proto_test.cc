#include "core/schedule_proto.h"

#include <gtest/gtest.h>

#include "core/generate.h"

namespace chronos {
namespace {

Schedule Interleaved() {
  ShapeSpec shape;
  shape.kind = "interleaved";
  shape.num_devices = 4;
  shape.chunks_per_device = 2;
  shape.num_microbatches = 8;
  shape.chunk_layers = {1, 1, 1, 1, 1, 1, 1, 1};
  absl::StatusOr<Schedule> s = GenerateSchedule(shape);
  EXPECT_TRUE(s.ok()) << s.status();
  Schedule out = *s;
  // Exercise every policy field too.
  out.devices[0][0].policy = MemoryPolicy::Offload(0.25);
  out.devices[1][0].policy = MemoryPolicy::Recompute(Granularity::kSelective);
  out.optimizer_offload = true;
  return out;
}

void ExpectSame(const Schedule& a, const Schedule& b) {
  EXPECT_EQ(a.kind, b.kind);
  EXPECT_EQ(a.num_devices, b.num_devices);
  EXPECT_EQ(a.chunks_per_device, b.chunks_per_device);
  EXPECT_EQ(a.num_microbatches, b.num_microbatches);
  EXPECT_EQ(a.chunk_device, b.chunk_device);
  EXPECT_EQ(a.chunk_layers, b.chunk_layers);
  EXPECT_EQ(a.optimizer_offload, b.optimizer_offload);
  EXPECT_EQ(a.devices, b.devices);
}

TEST(ScheduleProtoTest, RoundTripsWholeSchedule) {
  const Schedule s = Interleaved();
  absl::StatusOr<Schedule> back = ScheduleFromProto(ScheduleToProto(s));
  ASSERT_TRUE(back.ok()) << back.status();
  ExpectSame(s, *back);
}

TEST(ScheduleProtoTest, OnlyDeviceKeepsMetadataAndOneList) {
  const Schedule s = Interleaved();
  const v1::Schedule p = ScheduleToProto(s, 2);
  ASSERT_EQ(p.devices_size(), 1);
  EXPECT_EQ(p.devices(0).device(), 2);
  EXPECT_EQ(p.chunk_device_size(), 8);
  absl::StatusOr<Schedule> back = ScheduleFromProto(p);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->devices[2], s.devices[2]);
  EXPECT_TRUE(back->devices[0].empty());
  EXPECT_TRUE(ScheduleToProto(s, 9).devices().empty());
}

TEST(ScheduleProtoTest, RejectsUnknownActionTypeNamingTheField) {
  v1::Schedule p = ScheduleToProto(Interleaved());
  p.mutable_devices(1)->mutable_actions(3)->set_type(static_cast<v1::ActionType>(99));
  absl::Status s = ScheduleFromProto(p).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("devices[1].actions[3].type"), std::string::npos) << s;
}

TEST(ScheduleProtoTest, RejectsOutOfRangeIndices) {
  const v1::Schedule good = ScheduleToProto(Interleaved());
  {
    v1::Schedule p = good;
    p.mutable_devices(0)->mutable_actions(0)->set_chunk(8);
    EXPECT_NE(ScheduleFromProto(p).status().message().find(".chunk 8"), std::string::npos);
  }
  {
    v1::Schedule p = good;
    p.mutable_devices(0)->mutable_actions(0)->set_microbatch(8);
    EXPECT_FALSE(ScheduleFromProto(p).ok());
  }
  {
    v1::Schedule p = good;
    p.mutable_devices(0)->mutable_actions(0)->set_peer(4);
    EXPECT_FALSE(ScheduleFromProto(p).ok());
  }
  {
    v1::Schedule p = good;
    p.mutable_devices(0)->mutable_actions(0)->mutable_policy()->set_offload_fraction(1.5);
    EXPECT_NE(ScheduleFromProto(p).status().message().find("offload_fraction"), std::string::npos);
  }
  {
    v1::Schedule p = good;
    p.mutable_devices(0)->mutable_actions(0)->mutable_policy()->set_kind(
        static_cast<v1::PolicyKind>(7));
    EXPECT_NE(ScheduleFromProto(p).status().message().find("policy.kind"), std::string::npos);
  }
}

TEST(ScheduleProtoTest, RejectsInconsistentShape) {
  const v1::Schedule good = ScheduleToProto(Interleaved());
  {
    v1::Schedule p = good;
    p.set_num_devices(0);
    EXPECT_NE(ScheduleFromProto(p).status().message().find("num_devices"), std::string::npos);
  }
  {
    v1::Schedule p = good;
    p.mutable_chunk_device()->RemoveLast();
    EXPECT_NE(ScheduleFromProto(p).status().message().find("chunk_device"), std::string::npos);
  }
  {
    v1::Schedule p = good;
    p.set_chunk_device(0, 4);
    EXPECT_FALSE(ScheduleFromProto(p).ok());
  }
  {
    v1::Schedule p = good;
    p.mutable_devices(1)->set_device(0);
    EXPECT_NE(ScheduleFromProto(p).status().message().find("more than once"), std::string::npos);
  }
}

}  // namespace
}  // namespace chronos
