// Conversion between the schedule IR (core/schedule.h) and its wire form
// (chronos.v1.Schedule). The coordinator converts what the planner produced
// before pushing it; the worker converts what it received before
// interpreting it, so ScheduleFromProto checks every enum and index a worker
// would otherwise trust blindly. It does not prove the schedule sound: that
// is ValidateSchedule's job (core/validator.h). Pure; any thread.
#ifndef CHRONOS_CORE_SCHEDULE_PROTO_H_
#define CHRONOS_CORE_SCHEDULE_PROTO_H_

#include "absl/status/statusor.h"
#include "chronos/v1/schedule.pb.h"
#include "core/schedule.h"

namespace chronos {

// The whole schedule, or with only_device >= 0 the metadata (kind, shape,
// chunk placement and layers) plus that one device's action list: what one
// worker needs. An only_device outside [0, num_devices) gives no device list.
v1::Schedule ScheduleToProto(const Schedule& schedule, int only_device = -1);

// kInvalidArgument naming the offending field ("devices[1].actions[7].chunk
// 12 is outside [-1, 8)") when a count is not positive, chunk_device and
// chunk_layers disagree with the shape, a device index repeats or is out of
// range, or an action has an unknown type/policy/granularity or an index out
// of range. Devices missing from the message get empty action lists, so a
// single-device message (ScheduleToProto(s, d)) converts back with
// devices[d] filled and the others empty.
absl::StatusOr<Schedule> ScheduleFromProto(const v1::Schedule& proto);

}  // namespace chronos

#endif  // CHRONOS_CORE_SCHEDULE_PROTO_H_
