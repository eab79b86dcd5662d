#include "core/job_spec.h"

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/generate.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"

namespace chronos {
namespace {

using ::google::protobuf::util::MessageDifferencer;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

// CHRONOS.md section 9, verbatim.
constexpr char kSection9[] = R"(
name: shakespeare-small
model:    {layers: 8, hidden: 256, heads: 8, ffn_hidden: 688, vocab: 256, seq_len: 128}
data:     {path: ../shared/data/tinyshakespeare.txt, format: text}   # or format: llmc
training: {iterations: 200, micro_batch_size: 8, microbatches: 8, lr: 3.0e-4,
           warmup_iterations: 10, weight_decay: 0.1, grad_clip: 1.0, seed: 1234,
           precision: fp32, checkpoint_every: 50, checkpoint_dir: ./checkpoints}
parallel: {pipeline: 4, data: 1, chunks_per_device: 2}
schedule: {kind: chronos, inflight_cap: auto}        # gpipe | 1f1b | interleaved | chronos | zb...
memory:   {hbm_budget: auto, recompute: auto, offload_ratio: auto, optimizer_offload: auto}
device:   {profile: cpu}                              # or h100, or a path to a profile file
)";

// The repository root, from this file's path, so the tests do not depend
// on the directory they run in.
// Tests run from the repository root (chronos_cc_test); __FILE__ is not
// reliable (ccache's base_dir makes it relative to the build folder).
std::string RepoPath(const std::string& relative) { return relative; }

v1::JobSpec MustParse(const std::string& yaml) {
  absl::StatusOr<v1::JobSpec> spec = ParseJobSpecYaml(yaml);
  EXPECT_TRUE(spec.ok()) << spec.status();
  return spec.value_or(v1::JobSpec());
}

std::string ParseError(const std::string& yaml) {
  absl::StatusOr<v1::JobSpec> spec = ParseJobSpecYaml(yaml);
  EXPECT_FALSE(spec.ok()) << "parsed:\n" << yaml;
  if (spec.ok()) return "";
  EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(spec.status().message());
}

// ---------------------------------------------------------------------------
// Parsing.

TEST(JobSpecParseTest, Section9ExampleMapsOntoTheProto) {
  const v1::JobSpec spec = MustParse(kSection9);
  EXPECT_EQ(spec.name(), "shakespeare-small");
  EXPECT_EQ(spec.model().layers(), 8);
  EXPECT_EQ(spec.model().hidden(), 256);
  EXPECT_EQ(spec.model().heads(), 8);
  EXPECT_EQ(spec.model().ffn_hidden(), 688);
  EXPECT_EQ(spec.model().vocab(), 256);
  EXPECT_EQ(spec.model().seq_len(), 128);
  EXPECT_EQ(spec.data().path(), "../shared/data/tinyshakespeare.txt");
  EXPECT_EQ(spec.data().format(), v1::DATA_FORMAT_TEXT);
  EXPECT_EQ(spec.training().iterations(), 200);
  EXPECT_EQ(spec.training().micro_batch_size(), 8);
  EXPECT_EQ(spec.training().microbatches(), 8);
  EXPECT_DOUBLE_EQ(spec.training().lr(), 3.0e-4);
  EXPECT_EQ(spec.training().warmup_iterations(), 10);
  EXPECT_DOUBLE_EQ(spec.training().weight_decay(), 0.1);
  EXPECT_DOUBLE_EQ(spec.training().grad_clip(), 1.0);
  EXPECT_EQ(spec.training().seed(), 1234u);
  EXPECT_EQ(spec.training().precision(), v1::PRECISION_FP32);
  EXPECT_EQ(spec.training().checkpoint_every(), 50);
  EXPECT_EQ(spec.training().checkpoint_dir(), "./checkpoints");
  EXPECT_EQ(spec.parallel().pipeline(), 4);
  EXPECT_EQ(spec.parallel().data(), 1);
  EXPECT_EQ(spec.parallel().chunks_per_device(), 2);
  EXPECT_EQ(spec.schedule().kind(), "chronos");
  EXPECT_EQ(spec.schedule().inflight_cap(), 0);
  EXPECT_EQ(spec.memory().hbm_budget_bytes(), 0);
  EXPECT_EQ(spec.memory().recompute(), v1::RECOMPUTE_AUTO);
  EXPECT_FALSE(spec.memory().has_offload_ratio());
  EXPECT_EQ(spec.memory().optimizer_offload(), v1::OPTIMIZER_OFFLOAD_AUTO);
  EXPECT_EQ(spec.device().profile(), "cpu");
}

TEST(JobSpecParseTest, Section9ExampleIsValidAfterDefaults) {
  v1::JobSpec spec = MustParse(kSection9);
  ApplyJobSpecDefaults(&spec);
  EXPECT_TRUE(ValidateJobSpec(spec).ok()) << ValidateJobSpec(spec);
}

TEST(JobSpecParseTest, HbmBudgetTakesAutoSizesAndNumbers) {
  const struct {
    const char* yaml;
    int64_t bytes;
  } cases[] = {
      {"auto", 0},
      {"80GiB", int64_t{80} << 30},
      {"80 GiB", int64_t{80} << 30},
      {"80GB", 80'000'000'000},
      {"1.5GiB", int64_t{3} << 29},
      {"1073741824", int64_t{1} << 30},
      {"8.0e9", 8'000'000'000},
  };
  for (const auto& c : cases) {
    const v1::JobSpec spec = MustParse(absl::StrCat("memory: {hbm_budget: ", c.yaml, "}"));
    EXPECT_EQ(spec.memory().hbm_budget_bytes(), c.bytes) << c.yaml;
  }
  // The proto's own name reads too, so `-o yaml` output can be resubmitted.
  EXPECT_EQ(MustParse("memory: {hbm_budget_bytes: 1024}").memory().hbm_budget_bytes(), 1024);
  EXPECT_THAT(ParseError("memory: {hbm_budget: lots}"),
              AllOf(HasSubstr("memory.hbm_budget"), HasSubstr("80GiB"), HasSubstr("'lots'")));
  EXPECT_THAT(ParseError("memory: {hbm_budget: 1GiB, hbm_budget_bytes: 2}"),
              HasSubstr("duplicate key 'memory.hbm_budget_bytes'"));
}

TEST(JobSpecParseTest, RecomputeSpellings) {
  const struct {
    const char* yaml;
    v1::RecomputeMode mode;
  } cases[] = {
      {"auto", v1::RECOMPUTE_AUTO},
      {"off", v1::RECOMPUTE_OFF},
      {"none", v1::RECOMPUTE_OFF},
      {"false", v1::RECOMPUTE_OFF},
      {"full", v1::RECOMPUTE_FULL},
      {"true", v1::RECOMPUTE_FULL},
      {"selective", v1::RECOMPUTE_SELECTIVE},
      {"chunk", v1::RECOMPUTE_CHUNK},
      {"Full", v1::RECOMPUTE_FULL},
      {"RECOMPUTE_CHUNK", v1::RECOMPUTE_CHUNK},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(MustParse(absl::StrCat("memory: {recompute: ", c.yaml, "}")).memory().recompute(),
              c.mode)
        << c.yaml;
  }
  EXPECT_THAT(
      ParseError("memory: {recompute: sometimes}"),
      AllOf(HasSubstr("memory.recompute"), HasSubstr("'sometimes'"), HasSubstr("selective")));
}

TEST(JobSpecParseTest, OffloadRatioIsAutoOrANumber) {
  EXPECT_FALSE(MustParse("memory: {offload_ratio: auto}").memory().has_offload_ratio());
  const v1::JobSpec spec = MustParse("memory: {offload_ratio: 0.4}");
  ASSERT_TRUE(spec.memory().has_offload_ratio());
  EXPECT_DOUBLE_EQ(spec.memory().offload_ratio(), 0.4);
  // 0 is a real setting ("offload nothing"), distinct from auto.
  EXPECT_TRUE(MustParse("memory: {offload_ratio: 0}").memory().has_offload_ratio());
  EXPECT_THAT(ParseError("memory: {offload_ratio: half}"),
              AllOf(HasSubstr("memory.offload_ratio"), HasSubstr("auto or a finite number")));
}

TEST(JobSpecParseTest, OptimizerOffloadAndOtherEnums) {
  const struct {
    const char* yaml;
    v1::OptimizerOffload value;
  } cases[] = {{"auto", v1::OPTIMIZER_OFFLOAD_AUTO},
               {"true", v1::OPTIMIZER_OFFLOAD_ON},
               {"on", v1::OPTIMIZER_OFFLOAD_ON},
               {"false", v1::OPTIMIZER_OFFLOAD_OFF},
               {"off", v1::OPTIMIZER_OFFLOAD_OFF}};
  for (const auto& c : cases) {
    EXPECT_EQ(MustParse(absl::StrCat("memory: {optimizer_offload: ", c.yaml, "}"))
                  .memory()
                  .optimizer_offload(),
              c.value)
        << c.yaml;
  }
  const v1::JobSpec spec = MustParse(
      "data: {format: llmc}\ntraining: {precision: bf16}\n"
      "model: {attention: standard}");
  EXPECT_EQ(spec.data().format(), v1::DATA_FORMAT_LLMC);
  EXPECT_EQ(spec.training().precision(), v1::PRECISION_BF16);
  EXPECT_EQ(spec.model().attention(), v1::ATTENTION_STANDARD);
  EXPECT_EQ(MustParse("training: {precision: auto}").training().precision(),
            v1::PRECISION_UNSPECIFIED);
  EXPECT_EQ(MustParse("model: {attention: flash}").model().attention(), v1::ATTENTION_FLASH);
  EXPECT_THAT(ParseError("data: {format: csv}"),
              AllOf(HasSubstr("data.format"), HasSubstr("text, llmc")));
}

TEST(JobSpecParseTest, InflightCapIsAutoOrAnInteger) {
  EXPECT_EQ(MustParse("schedule: {inflight_cap: auto}").schedule().inflight_cap(), 0);
  EXPECT_EQ(MustParse("schedule: {inflight_cap: 3}").schedule().inflight_cap(), 3);
  EXPECT_THAT(ParseError("schedule: {inflight_cap: 2.5}"),
              AllOf(HasSubstr("schedule.inflight_cap"), HasSubstr("auto or an integer")));
}

TEST(JobSpecParseTest, ActivationCapIsASizeOrAuto) {
  EXPECT_EQ(MustParse("schedule: {activation_cap: 11GiB}").schedule().activation_cap_bytes(),
            int64_t{11} << 30);
  EXPECT_EQ(MustParse("schedule: {activation_cap: auto}").schedule().activation_cap_bytes(), 0);
  EXPECT_EQ(MustParse("schedule: {order_search_steps: 300000}").schedule().order_search_steps(),
            300000);
  EXPECT_THAT(ParseError("schedule: {activation_cap: lots}"), HasSubstr("schedule.activation_cap"));
  EXPECT_THAT(ParseError("schedule: {activation_cap: -1}"),
              AllOf(HasSubstr("schedule.activation_cap"), HasSubstr("(a size cannot be negative)"),
                    Not(HasSubstr("at least"))));
}

TEST(JobSpecParseTest, LayersPerChunkIsAListOfIntegers) {
  EXPECT_THAT(MustParse("parallel: {layers_per_chunk: [1, 2, 3]}").parallel().layers_per_chunk(),
              ::testing::ElementsAre(1, 2, 3));
  EXPECT_THAT(
      MustParse("parallel:\n  layers_per_chunk:\n    - 4\n    - 5\n").parallel().layers_per_chunk(),
      ::testing::ElementsAre(4, 5));
  EXPECT_THAT(ParseError("parallel: {layers_per_chunk: 3}"),
              AllOf(HasSubstr("parallel.layers_per_chunk"), HasSubstr("expected a list")));
  EXPECT_THAT(ParseError("parallel: {layers_per_chunk: [1, x]}"),
              AllOf(HasSubstr("parallel.layers_per_chunk[1]"), HasSubstr("an integer")));
}

TEST(JobSpecParseTest, NumbersInScientificNotation) {
  const v1::JobSpec spec = MustParse("training: {lr: 3.0e-4, min_lr: 3e-5, eps: 1E-8}");
  EXPECT_DOUBLE_EQ(spec.training().lr(), 3.0e-4);
  EXPECT_DOUBLE_EQ(spec.training().min_lr(), 3e-5);
  EXPECT_DOUBLE_EQ(spec.training().eps(), 1e-8);
}

TEST(JobSpecParseTest, DeviceProfileIsJustAString) {
  EXPECT_EQ(MustParse("device: {profile: ./profiles/a100.yaml}").device().profile(),
            "./profiles/a100.yaml");
  // An inline profile maps onto DeviceProfile; sizes read as sizes.
  const v1::JobSpec spec = MustParse(
      "device:\n  custom: {name: mine, hbm_bytes: 40GiB, peak_flops: 3.12e14,"
      " flash_attention: yes}");
  EXPECT_EQ(spec.device().custom().hbm_bytes(), int64_t{40} << 30);
  EXPECT_DOUBLE_EQ(spec.device().custom().peak_flops(), 3.12e14);
  EXPECT_TRUE(spec.device().custom().flash_attention());
}

TEST(JobSpecParseTest, EmptyValuesKeepDefaults) {
  const v1::JobSpec spec = MustParse("name: x\nmemory:\ntraining: {lr: }\n");
  EXPECT_EQ(spec.training().lr(), 0);
  EXPECT_FALSE(spec.has_memory());
}

TEST(JobSpecParseTest, UnknownKeySuggestsClosestKnownKey) {
  const std::string error = ParseError("model: {layers: 8, hiden: 256}");
  EXPECT_THAT(error, HasSubstr("unknown field 'model.hiden'"));
  EXPECT_THAT(error, HasSubstr("did you mean 'model.hidden'?"));
  EXPECT_THAT(error, HasSubstr("line 1"));

  EXPECT_THAT(ParseError("memory: {hbm_budgte: 8GiB}"),
              HasSubstr("did you mean 'memory.hbm_budget'?"));
  EXPECT_THAT(ParseError("trainig: {lr: 1}"),
              AllOf(HasSubstr("unknown field 'trainig'"), HasSubstr("did you mean 'training'?")));
  EXPECT_THAT(ParseError("device: {custom: {hbm_byte: 1}}"),
              HasSubstr("did you mean 'device.custom.hbm_bytes'?"));
}

TEST(JobSpecParseTest, UnknownKeyWithNothingCloseListsKnownKeys) {
  EXPECT_THAT(ParseError("schedule: {colour: blue}"),
              AllOf(HasSubstr("unknown field 'schedule.colour'"),
                    HasSubstr("known fields of schedule: kind, inflight_cap, order_search_steps"),
                    Not(HasSubstr("did you mean"))));
}

TEST(JobSpecParseTest, WrongTypesNameTheFieldAndTheExpectedType) {
  EXPECT_THAT(
      ParseError("model: {layers: eight}"),
      AllOf(HasSubstr("model.layers: expected an integer, got 'eight'"), HasSubstr("line 1")));
  EXPECT_THAT(ParseError("model: {layers: 8.5}"), HasSubstr("model.layers: expected an integer"));
  EXPECT_THAT(ParseError("model: {layers: 99999999999}"),
              AllOf(HasSubstr("model.layers: expected an integer"),
                    HasSubstr("out of range: at most 2147483647")));
  EXPECT_THAT(ParseError("model: {layers: -99999999999}"),
              HasSubstr("out of range: at least -2147483648"));
  EXPECT_THAT(ParseError("model: {layers: eight}"), Not(HasSubstr("out of range")));
  EXPECT_THAT(ParseError("training: {lr: fast}"),
              HasSubstr("training.lr: expected a finite number"));
  EXPECT_THAT(ParseError("training: {lr: .nan}"),
              HasSubstr("training.lr: expected a finite number"));
  EXPECT_THAT(ParseError("training: {seed: -1}"),
              HasSubstr("training.seed: expected a non-negative integer"));
  EXPECT_THAT(ParseError("model: 5"), HasSubstr("model: expected a mapping of keys, got a scalar"));
  EXPECT_THAT(ParseError("name: [a, b]"), HasSubstr("name: expected a string, got a list"));
  EXPECT_THAT(ParseError("- a\n- b\n"), HasSubstr("job spec: expected a mapping of keys"));
}

TEST(JobSpecParseTest, ReportsEveryProblemAtOnce) {
  const std::string error = ParseError("model: {layers: x, hidden: y}\nfoo: 1\n");
  EXPECT_THAT(error, HasSubstr("model.layers"));
  EXPECT_THAT(error, HasSubstr("model.hidden"));
  EXPECT_THAT(error, HasSubstr("unknown field 'foo'"));
}

TEST(JobSpecParseTest, YamlSyntaxErrorsHaveLineAndColumn) {
  EXPECT_THAT(ParseError("name: a\nmodel: {layers: 8\n"),
              AllOf(HasSubstr("not valid YAML"), HasSubstr("line "), HasSubstr("column ")));
  EXPECT_THAT(ParseError("name: a\n  bad: indent\n"),
              AllOf(HasSubstr("line 2"), HasSubstr("column")));
}

TEST(JobSpecParseTest, DuplicateKeysAndEmptySpecsAreRejected) {
  EXPECT_THAT(ParseError("name: a\nname: b\n"), HasSubstr("duplicate key 'name'"));
  EXPECT_THAT(ParseError(""), HasSubstr("empty"));
  EXPECT_THAT(ParseError("# only a comment\n"), HasSubstr("empty"));
  EXPECT_THAT(ParseError("name: a\n---\nname: b\n"), HasSubstr("2 YAML documents"));
}

// ---------------------------------------------------------------------------
// Files.

TEST(JobSpecFileTest, MissingFileIsNotFoundAndNamesThePath) {
  absl::StatusOr<v1::JobSpec> spec = LoadJobSpecFile("/nonexistent/chronos/job.yaml");
  ASSERT_FALSE(spec.ok());
  EXPECT_EQ(spec.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(spec.status().message(), HasSubstr("/nonexistent/chronos/job.yaml"));
}

TEST(JobSpecFileTest, OversizedFileIsRejected) {
  const std::string path = ::testing::TempDir() + "/job_spec_test_big.yaml";
  {
    std::ofstream out(path);
    out << "name: big\n";
    out << std::string(kMaxJobSpecFileBytes, '#') << "\n";
  }
  absl::StatusOr<v1::JobSpec> spec = LoadJobSpecFile(path);
  ASSERT_FALSE(spec.ok());
  EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(spec.status().message(), HasSubstr("larger than 1.00 MiB"));
  std::remove(path.c_str());
}

TEST(JobSpecFileTest, ParseErrorsNameTheFile) {
  const std::string path = ::testing::TempDir() + "/job_spec_test_bad.yaml";
  {
    std::ofstream out(path);
    out << "model: {hiden: 3}\n";
  }
  absl::StatusOr<v1::JobSpec> spec = LoadJobSpecFile(path);
  ASSERT_FALSE(spec.ok());
  EXPECT_THAT(spec.status().message(), AllOf(HasSubstr(path), HasSubstr("model.hiden")));
  std::remove(path.c_str());
}

TEST(JobSpecFileTest, ExamplesLoadAndValidate) {
  for (const char* name : {"examples/shakespeare-small.yaml", "examples/llama-h100-p8.yaml",
                           "examples/tiny-test.yaml"}) {
    SCOPED_TRACE(name);
    absl::StatusOr<v1::JobSpec> spec = LoadJobSpecFile(RepoPath(name));
    ASSERT_TRUE(spec.ok()) << spec.status();
    ApplyJobSpecDefaults(&*spec);
    EXPECT_TRUE(ValidateJobSpec(*spec).ok()) << ValidateJobSpec(*spec);
  }
  absl::StatusOr<v1::JobSpec> llama = LoadJobSpecFile(RepoPath("examples/llama-h100-p8.yaml"));
  ASSERT_TRUE(llama.ok());
  EXPECT_EQ(llama->memory().hbm_budget_bytes(), int64_t{72} << 30);
  EXPECT_EQ(llama->parallel().pipeline(), 8);
  EXPECT_EQ(llama->training().microbatches(), 32);
}

// ---------------------------------------------------------------------------
// Defaults.

TEST(JobSpecDefaultsTest, FillsZeroFieldsOnly) {
  v1::JobSpec spec;
  spec.mutable_training()->set_lr(1e-3);
  spec.mutable_parallel()->set_pipeline(4);
  ApplyJobSpecDefaults(&spec);
  EXPECT_EQ(spec.name(), "job");
  EXPECT_EQ(spec.parallel().data(), 1);
  EXPECT_EQ(spec.schedule().kind(), "chronos");
  EXPECT_EQ(spec.parallel().chunks_per_device(), DefaultChunksPerDevice("chronos"));
  EXPECT_EQ(spec.training().micro_batch_size(), 1);
  EXPECT_EQ(spec.training().microbatches(), 4);  // = pipeline
  EXPECT_EQ(spec.training().iterations(), 0);    // no default: must be given
  EXPECT_DOUBLE_EQ(spec.training().min_lr(), 1e-4);
  EXPECT_DOUBLE_EQ(spec.training().beta1(), 0.9);
  EXPECT_DOUBLE_EQ(spec.training().beta2(), 0.95);
  EXPECT_DOUBLE_EQ(spec.training().eps(), 1e-8);
  EXPECT_EQ(spec.training().checkpoint_dir(), "./checkpoints");
  EXPECT_DOUBLE_EQ(spec.model().rope_theta(), 10000);
  EXPECT_DOUBLE_EQ(spec.model().norm_eps(), 1e-5);
  EXPECT_DOUBLE_EQ(spec.model().init_std(), 0.02);
  EXPECT_EQ(spec.data().format(), v1::DATA_FORMAT_TEXT);
  EXPECT_EQ(spec.device().profile(), "cpu");

  v1::JobSpec again = spec;
  ApplyJobSpecDefaults(&again);
  EXPECT_TRUE(MessageDifferencer::Equals(spec, again)) << "not idempotent";
}

TEST(JobSpecDefaultsTest, KeepsGivenValuesAndUsesTheKindsChunkCount) {
  v1::JobSpec spec = MustParse(
      "name: keep\nschedule: {kind: 1f1b}\nparallel: {pipeline: 2}\n"
      "training: {microbatches: 6, beta1: 0.8}\ndata: {format: llmc}");
  ApplyJobSpecDefaults(&spec);
  EXPECT_EQ(spec.name(), "keep");
  EXPECT_EQ(spec.parallel().chunks_per_device(), DefaultChunksPerDevice("1f1b"));
  EXPECT_EQ(spec.training().microbatches(), 6);
  EXPECT_DOUBLE_EQ(spec.training().beta1(), 0.8);
  EXPECT_EQ(spec.data().format(), v1::DATA_FORMAT_LLMC);
}

TEST(JobSpecDefaultsTest, SpellsTheKindCanonically) {
  const struct {
    const char* given;
    const char* want;
    int chunks;
  } cases[] = {{"ZB-H1", "zbh1", 1},
               {"zb_h1", "zbh1", 1},
               {"1F1B", "1f1b", 1},
               {"Chronos-Pipe", "chronos", 2},
               {"interleaved-1f1b", "interleaved", 2},
               {"GPipe", "gpipe", 1},
               {"V-Min", "vmin", 2},
               {"v_half", "vhalf", 2},
               {"ZB-V", "vzb", 2}};
  for (const auto& c : cases) {
    v1::JobSpec spec = MustParse(absl::StrCat("schedule: {kind: ", c.given, "}"));
    ApplyJobSpecDefaults(&spec);
    EXPECT_EQ(spec.schedule().kind(), c.want) << c.given;
    EXPECT_EQ(spec.parallel().chunks_per_device(), c.chunks) << c.given;
  }
  // What spells no kind is left as written, so the error quotes it.
  v1::JobSpec bad = MustParse("schedule: {kind: zb-w}");
  ApplyJobSpecDefaults(&bad);
  EXPECT_EQ(bad.schedule().kind(), "zb-w");
}

// ---------------------------------------------------------------------------
// Validation.

v1::JobSpec ValidSpec() {
  v1::JobSpec spec = MustParse(kSection9);
  ApplyJobSpecDefaults(&spec);
  return spec;
}

TEST(JobSpecValidateTest, EachRuleNamesItsField) {
  const struct {
    const char* name;
    void (*mutate)(v1::JobSpec*);
    const char* expected;
  } cases[] = {
      {"layers", [](v1::JobSpec* s) { s->mutable_model()->set_layers(0); },
       "model.layers must be >= 1 (got 0)"},
      {"layers max", [](v1::JobSpec* s) { s->mutable_model()->set_layers(10001); },
       "model.layers must be <= 10000 (got 10001)"},
      {"divisible", [](v1::JobSpec* s) { s->mutable_model()->set_hidden(250); },
       "model.hidden (250) must be divisible by model.heads (8)"},
      {"rotary", [](v1::JobSpec* s) { s->mutable_model()->set_hidden(24); },
       "model.hidden / model.heads must be even for rotary embeddings"},
      {"hidden max", [](v1::JobSpec* s) { s->mutable_model()->set_hidden(1 << 18); },
       "model.hidden must be <= 131072"},
      {"heads", [](v1::JobSpec* s) { s->mutable_model()->set_heads(0); },
       "model.heads must be >= 1 (got 0)"},
      {"ffn", [](v1::JobSpec* s) { s->mutable_model()->set_ffn_hidden(0); },
       "model.ffn_hidden must be >= 1 (got 0)"},
      {"vocab", [](v1::JobSpec* s) { s->mutable_model()->set_vocab(1); },
       "model.vocab must be >= 2 (got 1)"},
      {"vocab max", [](v1::JobSpec* s) { s->mutable_model()->set_vocab((1 << 22) + 1); },
       "model.vocab must be <= 4194304"},
      {"seq_len", [](v1::JobSpec* s) { s->mutable_model()->set_seq_len(0); },
       "model.seq_len must be >= 1 (got 0)"},
      {"seq_len max", [](v1::JobSpec* s) { s->mutable_model()->set_seq_len((1 << 20) + 1); },
       "model.seq_len must be <= 1048576"},
      {"microbatches", [](v1::JobSpec* s) { s->mutable_training()->set_microbatches(2); },
       "training.microbatches (2) must be >= parallel.pipeline (4)"},
      {"microbatches max", [](v1::JobSpec* s) { s->mutable_training()->set_microbatches(4097); },
       "training.microbatches must be <= 4096"},
      {"interleaved groups",
       [](v1::JobSpec* s) {
         s->mutable_schedule()->set_kind("interleaved");
         s->mutable_training()->set_microbatches(6);
       },
       "training.microbatches (6) must be a multiple of parallel.pipeline (4) for "
       "schedule.kind interleaved"},
      {"unknown kind", [](v1::JobSpec* s) { s->mutable_schedule()->set_kind("foo"); },
       "schedule.kind 'foo' is unknown; known: "},
      {"1f1b v", [](v1::JobSpec* s) { s->mutable_schedule()->set_kind("1f1b"); },
       "parallel.chunks_per_device must be 1 for schedule.kind 1f1b (got 2)"},
      {"gpipe v", [](v1::JobSpec* s) { s->mutable_schedule()->set_kind("gpipe"); },
       "parallel.chunks_per_device must be 1 for schedule.kind gpipe"},
      {"chronos v",
       [](v1::JobSpec* s) {
         s->mutable_parallel()->set_chunks_per_device(3);
         s->mutable_model()->set_layers(12);
       },
       "chronos needs an even parallel.chunks_per_device >= 2 (got 3)"},
      {"interleaved v",
       [](v1::JobSpec* s) {
         s->mutable_schedule()->set_kind("interleaved");
         s->mutable_parallel()->set_chunks_per_device(1);
       },
       "interleaved needs parallel.chunks_per_device >= 2 (got 1)"},
      {"too few layers", [](v1::JobSpec* s) { s->mutable_model()->set_layers(3); },
       "model.layers (3) must be >= parallel.pipeline * "
       "parallel.chunks_per_device (8) chunks"},
      {"layers_per_chunk count",
       [](v1::JobSpec* s) {
         for (int n : {3, 3, 2}) s->mutable_parallel()->add_layers_per_chunk(n);
       },
       "parallel.layers_per_chunk has 3 entries; expected 8"},
      {"layers_per_chunk sum",
       [](v1::JobSpec* s) {
         for (int n : {1, 1, 1, 1, 1, 1, 1, 0}) {
           s->mutable_parallel()->add_layers_per_chunk(n);
         }
       },
       "parallel.layers_per_chunk sums to 7; expected model.layers 8"},
      {"text vocab", [](v1::JobSpec* s) { s->mutable_model()->set_vocab(100); },
       "data.format text needs model.vocab >= 256 (got 100)"},
      {"offload_ratio", [](v1::JobSpec* s) { s->mutable_memory()->set_offload_ratio(1.5); },
       "memory.offload_ratio must be in [0, 1]"},
      {"hbm_budget", [](v1::JobSpec* s) { s->mutable_memory()->set_hbm_budget_bytes(-1); },
       "memory.hbm_budget must be >= 0 (got -1)"},
      {"lr", [](v1::JobSpec* s) { s->mutable_training()->set_lr(0); },
       "training.lr must be a finite number > 0 (got 0)"},
      {"micro_batch_size", [](v1::JobSpec* s) { s->mutable_training()->set_micro_batch_size(0); },
       "training.micro_batch_size must be >= 1 (got 0)"},
      {"iterations", [](v1::JobSpec* s) { s->mutable_training()->set_iterations(0); },
       "training.iterations must be >= 1 (got 0)"},
      {"grad_clip", [](v1::JobSpec* s) { s->mutable_training()->set_grad_clip(-1); },
       "training.grad_clip must be a finite number >= 0 (got -1)"},
      {"weight_decay", [](v1::JobSpec* s) { s->mutable_training()->set_weight_decay(-0.5); },
       "training.weight_decay must be a finite number >= 0 (got -0.5)"},
      {"warmup negative", [](v1::JobSpec* s) { s->mutable_training()->set_warmup_iterations(-1); },
       "training.warmup_iterations must be >= 0 (got -1)"},
      {"warmup too long", [](v1::JobSpec* s) { s->mutable_training()->set_warmup_iterations(201); },
       "training.warmup_iterations (201) must be <= training.iterations (200)"},
      {"checkpoint_every", [](v1::JobSpec* s) { s->mutable_training()->set_checkpoint_every(-1); },
       "training.checkpoint_every must be >= 0 (got -1)"},
      {"min_lr", [](v1::JobSpec* s) { s->mutable_training()->set_min_lr(1); },
       "training.min_lr (1) must be <= training.lr"},
      {"beta2", [](v1::JobSpec* s) { s->mutable_training()->set_beta2(1); },
       "training.beta2 must be in [0, 1) (got 1)"},
      {"pipeline", [](v1::JobSpec* s) { s->mutable_parallel()->set_pipeline(0); },
       "parallel.pipeline must be >= 1 (got 0)"},
      {"data", [](v1::JobSpec* s) { s->mutable_parallel()->set_data(0); },
       "parallel.data must be >= 1 (got 0)"},
      {"devices",
       [](v1::JobSpec* s) {
         s->mutable_parallel()->set_pipeline(8);
         s->mutable_parallel()->set_data(513);
         s->mutable_training()->set_microbatches(8);
         s->mutable_model()->set_layers(16);
       },
       "parallel.pipeline * parallel.data must be <= 4096 devices"},
      {"name upper", [](v1::JobSpec* s) { s->set_name("Bad_Name"); },
       "name 'Bad_Name' must be 1-63 characters of [a-z0-9-], start with a "
       "letter"},
      {"name digit", [](v1::JobSpec* s) { s->set_name("1job"); }, "(a Kubernetes DNS label)"},
      {"name long", [](v1::JobSpec* s) { s->set_name(std::string(64, 'a')); },
       "must be 1-63 characters"},
      {"name empty", [](v1::JobSpec* s) { s->set_name(""); }, "name '' must be"},
      {"path", [](v1::JobSpec* s) { s->mutable_data()->set_path(""); },
       "data.path must not be empty"},
      {"inflight_cap", [](v1::JobSpec* s) { s->mutable_schedule()->set_inflight_cap(-2); },
       "schedule.inflight_cap must be >= 0 (got -2)"},
      {"order_search_steps negative",
       [](v1::JobSpec* s) { s->mutable_schedule()->set_order_search_steps(-1); },
       "schedule.order_search_steps must be >= 0 (got -1)"},
      {"order_search_steps too many",
       [](v1::JobSpec* s) { s->mutable_schedule()->set_order_search_steps(int64_t{1} << 40); },
       "schedule.order_search_steps must be <= 100000000 (got 1099511627776)"},
      {"activation_cap",
       [](v1::JobSpec* s) { s->mutable_schedule()->set_activation_cap_bytes(-5); },
       "schedule.activation_cap must be >= 0 (got -5)"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    v1::JobSpec spec = ValidSpec();
    c.mutate(&spec);
    const absl::Status status = ValidateJobSpec(spec);
    ASSERT_FALSE(status.ok());
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(status.message(), HasSubstr(c.expected));
  }
}

TEST(JobSpecValidateTest, ListsAllProblemsJoinedBySemicolons) {
  v1::JobSpec spec = ValidSpec();
  spec.mutable_model()->set_layers(0);
  spec.mutable_training()->set_lr(-1);
  spec.mutable_memory()->set_offload_ratio(2);
  const absl::Status status = ValidateJobSpec(spec);
  EXPECT_THAT(status.message(),
              AllOf(HasSubstr("model.layers must be >= 1 (got 0); "), HasSubstr("training.lr"),
                    HasSubstr("; memory.offload_ratio must be in [0, 1]")));
}

TEST(JobSpecValidateTest, AcceptsEveryKnownKindWithItsDefaultChunks) {
  for (const std::string& kind : ScheduleKinds()) {
    SCOPED_TRACE(kind);
    v1::JobSpec spec = MustParse(kSection9);
    spec.mutable_schedule()->set_kind(kind);
    spec.mutable_parallel()->clear_chunks_per_device();
    ApplyJobSpecDefaults(&spec);
    EXPECT_TRUE(ValidateJobSpec(spec).ok()) << ValidateJobSpec(spec);
  }
  v1::JobSpec spec = ValidSpec();
  spec.mutable_schedule()->set_kind("interleaved");
  spec.mutable_parallel()->set_chunks_per_device(2);
  for (int i = 0; i < 8; ++i) spec.mutable_parallel()->add_layers_per_chunk(1);
  EXPECT_TRUE(ValidateJobSpec(spec).ok()) << ValidateJobSpec(spec);
}

TEST(JobSpecValidateTest, ChronosAcceptsAnyEvenChunkCount) {
  for (int v : {2, 4, 6}) {
    SCOPED_TRACE(v);
    v1::JobSpec spec = ValidSpec();
    spec.mutable_parallel()->set_chunks_per_device(v);
    spec.mutable_model()->set_layers(spec.parallel().pipeline() * v);
    EXPECT_TRUE(ValidateJobSpec(spec).ok()) << ValidateJobSpec(spec);
  }
  v1::JobSpec spec = ValidSpec();
  spec.mutable_parallel()->set_chunks_per_device(4);
  spec.mutable_model()->set_layers(15);  // 16 chunks
  const absl::Status st = ValidateJobSpec(spec);
  EXPECT_THAT(st.message(), HasSubstr("model.layers (15) must be >= parallel.pipeline * "
                                      "parallel.chunks_per_device (16)"));
}

TEST(JobSpecValidateTest, NonFiniteNumbersAreRejected) {
  v1::JobSpec spec = ValidSpec();
  spec.mutable_training()->set_lr(std::numeric_limits<double>::quiet_NaN());
  spec.mutable_memory()->set_offload_ratio(std::numeric_limits<double>::quiet_NaN());
  const absl::Status status = ValidateJobSpec(spec);
  EXPECT_THAT(status.message(),
              AllOf(HasSubstr("training.lr must be a finite"), HasSubstr("memory.offload_ratio")));
}

// ---------------------------------------------------------------------------
// Writing YAML.

v1::JobSpec RoundTrip(const v1::JobSpec& spec) {
  const std::string yaml = JobSpecToYaml(spec);
  absl::StatusOr<v1::JobSpec> back = ParseJobSpecYaml(yaml);
  EXPECT_TRUE(back.ok()) << back.status() << "\n" << yaml;
  return back.value_or(v1::JobSpec());
}

TEST(JobSpecYamlTest, RoundTripsTheDefaultedExample) {
  const v1::JobSpec spec = ValidSpec();
  const v1::JobSpec back = RoundTrip(spec);
  EXPECT_TRUE(MessageDifferencer::Equals(spec, back)) << spec.DebugString() << "\nvs\n"
                                                      << back.DebugString();
}

TEST(JobSpecYamlTest, RoundTripsEveryKnobAndAwkwardValues) {
  v1::JobSpec spec = ValidSpec();
  spec.set_name("null");  // a string YAML would otherwise read as null
  spec.mutable_data()->set_path("data: with # specials");
  spec.mutable_data()->set_format(v1::DATA_FORMAT_LLMC);
  spec.mutable_model()->set_attention(v1::ATTENTION_STANDARD);
  spec.mutable_model()->set_rope_theta(500000.0);
  spec.mutable_training()->set_lr(0.1 + 0.2);  // needs 17 digits
  spec.mutable_training()->set_seed(18446744073709551615u);
  spec.mutable_training()->set_precision(v1::PRECISION_BF16);
  spec.mutable_parallel()->add_layers_per_chunk(2);
  spec.mutable_parallel()->add_layers_per_chunk(6);
  spec.mutable_schedule()->set_inflight_cap(3);
  spec.mutable_memory()->set_hbm_budget_bytes(int64_t{80} << 30);
  spec.mutable_memory()->set_recompute(v1::RECOMPUTE_SELECTIVE);
  spec.mutable_memory()->set_offload_ratio(0.0);
  spec.mutable_memory()->set_optimizer_offload(v1::OPTIMIZER_OFFLOAD_OFF);
  spec.mutable_device()->mutable_custom()->set_hbm_bytes(1234567);
  spec.mutable_device()->mutable_custom()->set_async_copies(true);
  const std::string yaml = JobSpecToYaml(spec);
  EXPECT_THAT(yaml, AllOf(HasSubstr("hbm_budget: 80GiB"), HasSubstr("recompute: selective"),
                          HasSubstr("optimizer_offload: off"), HasSubstr("format: llmc"),
                          HasSubstr("precision: bf16"), HasSubstr("inflight_cap: 3")));
  const v1::JobSpec back = RoundTrip(spec);
  EXPECT_TRUE(MessageDifferencer::Equals(spec, back)) << yaml << "\n" << back.DebugString();
  EXPECT_TRUE(back.memory().has_offload_ratio());
}

TEST(JobSpecYamlTest, WritesAutoForZeroMeansAuto) {
  const std::string yaml = JobSpecToYaml(MustParse(kSection9));
  EXPECT_THAT(yaml, AllOf(HasSubstr("hbm_budget: auto"), HasSubstr("offload_ratio: auto"),
                          HasSubstr("inflight_cap: auto"), HasSubstr("recompute: auto"),
                          Not(HasSubstr("hbm_budget_bytes")), Not(HasSubstr("custom"))));
  const v1::JobSpec back = RoundTrip(MustParse(kSection9));
  EXPECT_FALSE(back.memory().has_offload_ratio());
  EXPECT_TRUE(MessageDifferencer::Equals(MustParse(kSection9), back));
}

}  // namespace
}  // namespace chronos
