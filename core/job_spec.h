// The YAML job spec (docs/job-spec.md) and its mapping onto
// chronos.v1.JobSpec: keys are the proto's snake_case field names with the
// same nesting, plus a few conveniences ("auto", sizes such as "80GiB",
// short enum names). chronosctl parses specs with this; the coordinator only
// sees the proto. Pure functions; thread-safe.
#ifndef CHRONOS_CORE_JOB_SPEC_H_
#define CHRONOS_CORE_JOB_SPEC_H_

#include <string>

#include "absl/status/statusor.h"
#include "chronos/v1/job.pb.h"
#include "core/job_spec_validation.h"  // ApplyJobSpecDefaults, ValidateJobSpec

namespace chronos {

// Parses a YAML job spec. Applies no defaults and checks no ranges (see
// ApplyJobSpecDefaults / ValidateJobSpec); rejects what cannot be mapped
// onto the proto. kInvalidArgument, listing every problem joined by "; ",
// for: YAML syntax errors (with line and column), unknown keys (with the
// full key path and the closest known key), values of the wrong type (with
// the field and the expected type), duplicate keys.
absl::StatusOr<v1::JobSpec> ParseJobSpecYaml(const std::string& text);

// Reads and parses a job-spec file. kNotFound naming the path when it does
// not exist; kInvalidArgument when it is larger than kMaxJobSpecFileBytes
// (a spec is a page of YAML; anything bigger is the wrong file).
inline constexpr int64_t kMaxJobSpecFileBytes = 1 << 20;
absl::StatusOr<v1::JobSpec> LoadJobSpecFile(const std::string& path);

// The spec as YAML in the shape ParseJobSpecYaml reads: block style, every
// section present, zero-means-auto fields written as "auto", hbm_budget as
// an exact size ("80GiB"), enums by their short names. Parsing the result
// gives back an equal message.
std::string JobSpecToYaml(const v1::JobSpec& spec);

}  // namespace chronos

#endif  // CHRONOS_CORE_JOB_SPEC_H_
