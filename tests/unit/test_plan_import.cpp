// The plan pipeline on other engines' stats (read_stats): format detection, summing several files,
// shape and format mismatches, and the EP size of TensorRT-LLM rank files. The fixtures of
// tests/data/formats all describe the vLLM example's load [[138, 22, 45], [25, 110, 50]].
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "eplb/plan.hpp"

namespace {

const std::string k_dir = std::string(EPLB_TEST_DATA_DIR) + "/formats/";

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

eplb::plan_request request(std::vector<std::string> files) {
  eplb::plan_request r;
  for (auto& f : files) r.stats.push_back(k_dir + f);
  r.ep = 2;
  r.redundant = 1;
  r.policy.kind = eplb::policy_kind::deepseek;
  return r;
}

eplb::load_matrix example_load() {
  eplb::load_matrix m(2, 3);
  m << 138, 22, 45, 25, 110, 50;
  return m;
}

}  // namespace

TEST_CASE("plan from SGLang, matrix and TensorRT-LLM stats equals the plan from vLLM JSONL",
          "[plan_import]") {
  auto vllm = eplb::plan(request({"vllm_example.jsonl"}));
  REQUIRE(vllm.ok());
  CHECK_FALSE(vllm->imported.has_value());
  // vllm-offline-eplb.md section 5: the reference tool's mapping for this load.
  CHECK(vllm->result.physical_to_logical == std::vector<std::int32_t>{0, 2, 0, 1, 1, 2, 1, 0});
  for (const char* file : {"sglang_logical_count_3d.json", "matrix.csv", "trtllm"}) {
    INFO(file);
    auto other = eplb::plan(request({file}));
    REQUIRE(other.ok());
    REQUIRE(other->imported.has_value());
    CHECK(other->aggregator == "import");
    CHECK(other->loads == example_load());
    CHECK(other->result.physical_to_logical == vllm->result.physical_to_logical);
    CHECK(other->read.num_layers == 2);
    CHECK(other->read.num_experts == 3);
  }
  auto trt = eplb::plan(request({"trtllm"}));
  REQUIRE(trt.ok());
  // TensorRT-LLM keys name decoder layers 3 and 4: they become the layer ids of the outputs.
  CHECK(trt->imported->layer_ids == std::vector<int>{3, 4});
}

TEST_CASE("several files of one format are summed; shapes and formats must agree",
          "[plan_import]") {
  eplb::plan_outcome twice;
  REQUIRE(eplb::read_stats(request({"matrix.csv", "matrix.csv"}), &twice).ok());
  CHECK(twice.loads == example_load() * 2);
  CHECK(twice.imported->files.size() == 2);

  // SGLang 2-D [L][E] and the LMDeploy matrix of the same spec example, one dense row skipped.
  eplb::plan_request skip = request({"sglang_logical_count_2d.json"});
  skip.skip_layers = 1;
  eplb::plan_outcome sg;
  REQUIRE(eplb::read_stats(skip, &sg).ok());
  eplb::load_matrix want(2, 4);
  want << 120, 30, 55, 15, 10, 90, 40, 60;
  CHECK(sg.loads == want);
  CHECK(sg.imported->layer_ids == std::vector<int>{1, 2});

  eplb::plan_outcome bad;
  eplb::plan_request shapes = request({"matrix.csv", "lmdeploy_stats.json"});
  shapes.stats_format = "matrix";
  const eplb::status s = eplb::read_stats(shapes, &bad);
  REQUIRE_FALSE(s.ok());
  CHECK(s.code() == eplb::errc::shape_mismatch);
  CHECK(contains(s.message(), "lmdeploy_stats.json: has 3 layers x 4 experts, but"));

  const eplb::status mixed = eplb::read_stats(request({"vllm_example.jsonl", "matrix.csv"}), &bad);
  REQUIRE_FALSE(mixed.ok());
  CHECK(contains(mixed.message(), "matrix.csv: is matrix_csv but"));
  CHECK(contains(mixed.message(), "give stats of one format per run"));

  eplb::plan_request skip_vllm = request({"vllm_example.jsonl"});
  skip_vllm.skip_layers = 2;
  const eplb::status sv = eplb::read_stats(skip_vllm, &bad);
  REQUIRE_FALSE(sv.ok());
  CHECK(contains(sv.message(), "--skip-layers"));

  eplb::plan_request unknown = request({"matrix.csv"});
  unknown.stats_format = "parquet";
  const eplb::status su = eplb::read_stats(unknown, &bad);
  REQUIRE_FALSE(su.ok());
  CHECK(contains(su.message(), "expected auto, vllm, sglang, trtllm or matrix"));
}

TEST_CASE("TensorRT-LLM rank files give the default EP size", "[plan_import]") {
  eplb::plan_request r = request({"trtllm"});
  r.ep.reset();
  auto out = eplb::plan(r);
  REQUIRE(out.ok());
  CHECK(out->topo.num_ranks == 2);  // rank0 and rank1.safetensors
  CHECK(out->sources.ep == "rank files");
  r.ep = 4;
  r.redundant = 1;
  auto given = eplb::plan(r);
  REQUIRE(given.ok());
  CHECK(given->topo.num_ranks == 4);
  CHECK(given->sources.ep == "--ep");
}
