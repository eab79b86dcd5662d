#include "core/proto_json.h"

#include <cstdint>
#include <limits>
#include <string>

#include "chronos/v1/job.pb.h"
#include "chronos/v1/plan.pb.h"
#include "core/job_spec.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "yaml-cpp/yaml.h"

namespace chronos {
namespace {

using ::google::protobuf::util::MessageDifferencer;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;
using json = ::nlohmann::json;

v1::Job SampleJob() {
  v1::Job job;
  job.mutable_metadata()->set_name("llama");
  job.mutable_metadata()->set_generation(int64_t{1} << 40);
  job.mutable_metadata()->mutable_created_at()->set_seconds(1700000000);
  job.mutable_metadata()->mutable_created_at()->set_nanos(500000000);
  v1::JobSpec* spec = job.mutable_spec();
  spec->set_name("llama");
  spec->mutable_model()->set_layers(64);
  spec->mutable_training()->set_seed(std::numeric_limits<uint64_t>::max());
  spec->mutable_training()->set_lr(3e-4);
  spec->mutable_parallel()->add_layers_per_chunk(30);
  spec->mutable_parallel()->add_layers_per_chunk(34);
  spec->mutable_memory()->set_hbm_budget_bytes(int64_t{80} << 30);
  spec->mutable_memory()->set_recompute(v1::RECOMPUTE_FULL);
  spec->mutable_memory()->set_offload_ratio(0.25);
  job.mutable_status()->set_state(v1::JOB_STATE_RUNNING);
  v1::DeviceIteration* d = job.mutable_status()->add_devices();
  d->set_device(3);
  d->set_peak_activation_bytes(int64_t{5} << 33);
  return job;
}

TEST(ProtoJsonTest, FieldNamesAreSnakeCaseAndInt64AreNumbers) {
  v1::DevicePlan plan;
  plan.set_peak_activation_bytes(int64_t{1} << 40);
  plan.set_fits(true);
  const json j = ProtoToJson(plan);
  ASSERT_TRUE(j.contains("peak_activation_bytes"));
  EXPECT_FALSE(j.contains("peakActivationBytes"));
  EXPECT_TRUE(j["peak_activation_bytes"].is_number_integer());
  EXPECT_EQ(j["peak_activation_bytes"].get<int64_t>(), int64_t{1} << 40);
  EXPECT_THAT(j.dump(), HasSubstr("\"peak_activation_bytes\":1099511627776"));
  EXPECT_EQ(j["fits"], true);
}

TEST(ProtoJsonTest, Uint64KeepsAllDigits) {
  const json j = ProtoToJson(SampleJob());
  const json& seed = j["spec"]["training"]["seed"];
  EXPECT_TRUE(seed.is_number_unsigned());
  EXPECT_EQ(seed.get<uint64_t>(), std::numeric_limits<uint64_t>::max());
  EXPECT_THAT(j.dump(), HasSubstr("\"seed\":18446744073709551615"));
}

TEST(ProtoJsonTest, EnumsRepeatedAndNestedMessages) {
  const json j = ProtoToJson(SampleJob());
  EXPECT_EQ(j["spec"]["memory"]["recompute"], "RECOMPUTE_FULL");
  EXPECT_EQ(j["status"]["state"], "JOB_STATE_RUNNING");
  EXPECT_EQ(j["spec"]["parallel"]["layers_per_chunk"], json::array({30, 34}));
  ASSERT_TRUE(j["status"]["devices"].is_array());
  EXPECT_EQ(j["status"]["devices"][0]["device"], 3);
  EXPECT_EQ(j["status"]["devices"][0]["peak_activation_bytes"], int64_t{5} << 33);
}

TEST(ProtoJsonTest, TimestampsAreRfc3339) {
  const json j = ProtoToJson(SampleJob());
  EXPECT_EQ(j["metadata"]["created_at"], "2023-11-14T22:13:20.5Z");
  v1::JobMetadata m;
  m.mutable_created_at()->set_seconds(0);
  EXPECT_EQ(ProtoToJson(m)["created_at"], "1970-01-01T00:00:00Z");
}

TEST(ProtoJsonTest, OptionalFieldsOnlyWhenSet) {
  v1::MemorySpec memory;
  EXPECT_FALSE(ProtoToJson(memory).contains("offload_ratio"));
  memory.set_offload_ratio(0.0);  // set to zero is not unset
  const json j = ProtoToJson(memory);
  ASSERT_TRUE(j.contains("offload_ratio"));
  EXPECT_EQ(j["offload_ratio"], 0.0);
}

TEST(ProtoJsonTest, DefaultsAreIncludedOnRequest) {
  v1::JobSpec spec;
  spec.mutable_model()->set_layers(2);
  const json all = ProtoToJson(spec, /*include_defaults=*/true);
  EXPECT_EQ(all["model"]["hidden"], 0);
  EXPECT_EQ(all["model"]["attention"], "ATTENTION_AUTO");
  EXPECT_EQ(all["name"], "");
  EXPECT_FALSE(all.contains("data")) << "unset messages stay out";
  const json sparse = ProtoToJson(spec, /*include_defaults=*/false);
  EXPECT_EQ(sparse, json({{"model", {{"layers", 2}}}}));
  v1::ParallelSpec parallel;
  EXPECT_EQ(ProtoToJson(parallel)["layers_per_chunk"], json::array());
  EXPECT_FALSE(ProtoToJson(parallel, false).contains("layers_per_chunk"));
}

TEST(ProtoJsonTest, NonFiniteDoublesAreStrings) {
  v1::IterationRecord r;
  r.set_loss(std::numeric_limits<double>::quiet_NaN());
  r.set_lr(std::numeric_limits<double>::infinity());
  const json j = ProtoToJson(r);
  EXPECT_EQ(j["loss"], "NaN");
  EXPECT_EQ(j["lr"], "Infinity");
  v1::IterationRecord back;
  ASSERT_TRUE(JsonToProto(j, &back).ok());
  EXPECT_TRUE(std::isnan(back.loss()));
  EXPECT_TRUE(std::isinf(back.lr()));
}

TEST(ProtoJsonTest, MapsAndOneofs) {
  google::protobuf::Struct s;
  (*s.mutable_fields())["a"].set_number_value(1.5);
  (*s.mutable_fields())["b"].set_string_value("x");
  const json j = ProtoToJson(s);
  EXPECT_EQ(j["fields"]["a"], json({{"number_value", 1.5}}));
  EXPECT_EQ(j["fields"]["b"], json({{"string_value", "x"}}));
  google::protobuf::Struct back;
  ASSERT_TRUE(JsonToProto(j, &back).ok());
  EXPECT_TRUE(MessageDifferencer::Equals(s, back));
}

TEST(ProtoJsonTest, JsonToProtoRoundTrips) {
  const v1::Job job = SampleJob();
  for (bool defaults : {true, false}) {
    v1::Job back;
    const absl::Status status = JsonToProto(ProtoToJson(job, defaults), &back);
    ASSERT_TRUE(status.ok()) << status;
    EXPECT_TRUE(MessageDifferencer::Equals(job, back)) << job.DebugString() << "\nvs\n"
                                                       << back.DebugString();
  }
}

TEST(ProtoJsonTest, JsonToProtoAcceptsProtobufJsonSpellings) {
  v1::DevicePlan plan;
  const absl::Status status =
      JsonToProto(json::parse(R"({"peakBytes": "123", "device": 2.0, "fits": true})"), &plan);
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_EQ(plan.peak_bytes(), 123);
  EXPECT_EQ(plan.device(), 2);
  v1::MemorySpec memory;
  ASSERT_TRUE(JsonToProto(json::parse(R"({"recompute": 3})"), &memory).ok());
  EXPECT_EQ(memory.recompute(), v1::RECOMPUTE_SELECTIVE);
}

TEST(ProtoJsonTest, JsonToProtoErrorsNameTheField) {
  v1::Job job;
  absl::Status s = JsonToProto(json::parse(R"({"spec": {"model": {"layers": "many"}}})"), &job);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("spec.model.layers: expected a 32-bit integer"));

  s = JsonToProto(json::parse(R"({"spec": {"modle": {}}})"), &job);
  EXPECT_THAT(s.message(), HasSubstr("unknown field 'spec.modle'"));

  s = JsonToProto(json::parse(R"({"spec": {"model": {"layers": 3000000000}}})"), &job);
  EXPECT_THAT(s.message(), HasSubstr("spec.model.layers"));

  s = JsonToProto(json::parse(R"({"spec": {"memory": {"recompute": "FULL"}}})"), &job);
  EXPECT_THAT(s.message(), HasSubstr("spec.memory.recompute: expected a value of RecomputeMode"));

  s = JsonToProto(json::parse(R"({"spec": {"parallel": {"layers_per_chunk": [1, "x"]}}})"), &job);
  EXPECT_THAT(s.message(), HasSubstr("spec.parallel.layers_per_chunk[1]"));

  s = JsonToProto(json::parse(R"({"metadata": {"created_at": "yesterday"}})"), &job);
  EXPECT_THAT(s.message(), HasSubstr("metadata.created_at: expected an RFC 3339 time"));

  s = JsonToProto(json::parse(R"([1])"), &job);
  EXPECT_THAT(s.message(), HasSubstr("expected an object"));
}

TEST(ProtoJsonYamlTest, BlockStyleWithQuotesWhereNeeded) {
  const json j = {
      {"name", "plain"},
      {"looks_bool", "true"},
      {"looks_yes", "yes"},
      {"looks_num", "1.5"},
      {"empty", ""},
      {"null_word", "null"},
      {"time", "2023-11-14T22:13:20Z"},
      {"negative", "-1"},
      {"dot", ".5"},
      {"path", "../data/x.txt"},
      {"int", 1099511627776},
      {"float", 0.25},
      {"flag", false},
      {"nothing", nullptr},
      {"list", {1, 2}},
      {"empty_list", json::array()},
      {"empty_map", json::object()},
      {"nested", {{"k", "v"}}},
  };
  const std::string yaml = JsonToYaml(j);
  EXPECT_THAT(yaml,
              AllOf(HasSubstr("name: plain\n"), HasSubstr("looks_bool: \"true\"\n"),
                    HasSubstr("looks_yes: \"yes\"\n"), HasSubstr("looks_num: \"1.5\"\n"),
                    HasSubstr("empty: \"\"\n"), HasSubstr("null_word: \"null\"\n"),
                    HasSubstr("time: \"2023-11-14T22:13:20Z\"\n"), HasSubstr("negative: \"-1\"\n"),
                    HasSubstr("dot: \".5\"\n"), HasSubstr("path: ../data/x.txt\n"),
                    HasSubstr("int: 1099511627776\n"), HasSubstr("float: 0.25\n"),
                    HasSubstr("flag: false\n"), HasSubstr("empty_list: []\n"),
                    HasSubstr("empty_map: {}\n"), HasSubstr("list:\n  - 1\n  - 2\n"),
                    HasSubstr("nested:\n  k: v\n"), Not(HasSubstr("{k"))));
  // Read back with a YAML parser: the same values and types.
  const YAML::Node node = YAML::Load(yaml);
  EXPECT_EQ(node["looks_bool"].Tag(), "!");  // quoted: a string
  EXPECT_EQ(node["name"].as<std::string>(), "plain");
  EXPECT_EQ(node["int"].as<int64_t>(), 1099511627776);
  EXPECT_TRUE(node["nothing"].IsNull());
  EXPECT_EQ(node["nested"]["k"].as<std::string>(), "v");
}

// `chronosctl get JOB -o yaml` prints ProtoToJson through JsonToYaml; its
// spec section must be a job spec that can be submitted again.
TEST(ProtoJsonYamlTest, SpecPrintedAsYamlParsesAsAJobSpec) {
  v1::JobSpec spec = SampleJob().spec();
  ApplyJobSpecDefaults(&spec);
  const std::string yaml = JsonToYaml(ProtoToJson(spec));
  absl::StatusOr<v1::JobSpec> back = ParseJobSpecYaml(yaml);
  ASSERT_TRUE(back.ok()) << back.status() << "\n" << yaml;
  EXPECT_TRUE(MessageDifferencer::Equals(spec, *back)) << yaml << "\n" << back->DebugString();
}

}  // namespace
}  // namespace chronos
