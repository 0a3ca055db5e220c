// The redundant-slot sweep: what it recommends on uniform loads and on one very hot expert, the
// memory figures, the split of the one read, the JSON schema, determinism and bad requests.

#include <simdjson.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "eplb/sweep.hpp"
#include "eplb/synth.hpp"
#include "test_util.hpp"

using namespace eplb;

namespace {

// A trace of `steps` records sampled from `dist`, recorded at EP 4 without redundant slots.
std::string write_trace(const test::temp_dir& dir, const std::string& name,
                        const weight_matrix& dist, int steps, int min_batch, int max_batch) {
  synth_options o;
  o.num_steps = steps;
  o.min_batch_tokens = min_batch;
  o.max_batch_tokens = max_batch;
  o.recording.num_layers = static_cast<int>(dist.rows());
  o.recording.num_experts = static_cast<int>(dist.cols());
  o.recording.num_slots = static_cast<int>(dist.cols());
  o.recording.num_ranks = 4;
  o.seed = 7;
  std::ostringstream out;
  REQUIRE(synthesize_stats(dist, o, out).ok());
  return dir.write(name, out.str());
}

sweep_result sweep_ok(const sweep_request& req) {
  auto r = run_sweep(req);
  INFO((r.ok() ? std::string() : r.message()));
  REQUIRE(r.ok());
  return std::move(*r);
}

const sweep_point& point(const sweep_result& r, int ep, int redundant) {
  for (const sweep_point& p : r.points) {
    if (p.ep == ep && p.redundant == redundant) return p;
  }
  FAIL("no point EP " << ep << " R " << redundant);
  return r.points.front();
}

sweep_request request(const std::string& stats, std::vector<int> eps, std::vector<int> rs) {
  sweep_request req;
  req.stats = {stats};
  req.eps = std::move(eps);
  req.redundant = std::move(rs);
  req.threads = 2;
  return req;
}

}  // namespace

TEST_CASE("sweep: uniform loads recommend no redundant slots", "[sweep]") {
  test::temp_dir dir;
  // Every expert equally likely, large batches: any layout is balanced up to sampling noise.
  const weight_matrix uniform = weight_matrix::Constant(4, 16, 1.0);
  const std::string stats = write_trace(dir, "uniform.jsonl", uniform, 300, 32768, 65536);
  const sweep_result r = sweep_ok(request(stats, {4}, {0, 4, 8, 16}));
  REQUIRE(r.choices.size() == 1);
  CHECK(r.choices[0].ep == 4);
  CHECK(r.choices[0].recommended == 0);
  for (const sweep_point& p : r.points) {
    REQUIRE(p.planned);
    CHECK(p.mean < 1.02);
  }
  CHECK(r.choices[0].why.find("R = 0") == 0);
}

TEST_CASE("sweep: one very hot expert recommends redundant slots", "[sweep]") {
  test::temp_dir dir;
  // Expert 0 of every layer takes 20 times the load of the others: with no redundant slot its
  // rank carries at least 20 / (35 / 4) = 2.3 times the mean rank load.
  weight_matrix hot = weight_matrix::Constant(4, 16, 1.0);
  hot.col(0).setConstant(20.0);
  const std::string stats = write_trace(dir, "hot.jsonl", hot, 300, 4096, 8192);
  sweep_request req = request(stats, {4}, {0, 4, 8, 16});
  req.expert_fraction = 0.2;
  const sweep_result r = sweep_ok(req);
  REQUIRE(r.choices.size() == 1);
  CHECK(r.choices[0].recommended > 0);
  const sweep_point& none = point(r, 4, 0);
  const sweep_point& chosen = point(r, 4, r.choices[0].recommended);
  CHECK(none.mean > 2.0);
  CHECK(chosen.mean < 1.3);
  // Time saved against one baseline for every R: it grows as the imbalance falls.
  CHECK(none.identity_mean == chosen.identity_mean);
  REQUIRE(chosen.time_saved.has_value());
  CHECK(*chosen.time_saved > *none.time_saved);
  CHECK(*chosen.time_saved == Approx(0.2 * (1 - chosen.mean / chosen.identity_mean)));
}

TEST_CASE("sweep: memory per GPU from a tiny config, checked by hand", "[sweep]") {
  test::temp_dir dir;
  // tiny_qwen.json: 5 MoE layers x 8 experts, one expert 3 x 16 x 8 x 4 = 1536 bytes.
  const std::string stats =
      write_trace(dir, "tiny.jsonl", weight_matrix::Constant(5, 8, 1.0), 60, 256, 512);
  sweep_request req = request(stats, {2, 4}, {0, 2, 4});
  auto memory =
      read_model_config(std::string(EPLB_TEST_DATA_DIR) + "/configs/tiny_qwen.json", std::nullopt);
  REQUIRE(memory.ok());
  req.memory = *memory;
  const sweep_result r = sweep_ok(req);
  // R / EP more experts per rank in each of 5 layers.
  CHECK(*point(r, 2, 0).extra_bytes_per_gpu == 0.0);
  CHECK(*point(r, 2, 2).extra_bytes_per_gpu == 1.0 * 1536 * 5);
  CHECK(*point(r, 2, 4).extra_bytes_per_gpu == 2.0 * 1536 * 5);
  CHECK(*point(r, 4, 4).extra_bytes_per_gpu == 1.0 * 1536 * 5);
  // 8 + 2 slots do not divide by EP 4: skipped, with the nearest valid R on each side.
  const sweep_point& skipped = point(r, 4, 2);
  CHECK_FALSE(skipped.planned);
  CHECK(skipped.nearest == std::vector<int>{0, 4});
  CHECK_FALSE(skipped.extra_bytes_per_gpu.has_value());

  // --expert-bytes: the stats' layers.
  expert_memory given;
  given.source = "--expert-bytes";
  given.expert_bytes = 1000;
  req.memory = given;
  CHECK(*point(sweep_ok(req), 4, 4).extra_bytes_per_gpu == 1.0 * 1000 * 5);

  // A config of another shape is refused, naming the file.
  auto other =
      read_model_config(std::string(EPLB_SOURCE_DIR) + "/data/configs/qwen3_30b_a3b.json", {});
  REQUIRE(other.ok());
  req.memory = *other;
  auto mismatch = run_sweep(req);
  REQUIRE_FALSE(mismatch.ok());
  CHECK(mismatch.code() == errc::shape_mismatch);
  CHECK(mismatch.message().find("qwen3_30b_a3b.json") != std::string::npos);
}

TEST_CASE("sweep: one read splits at a checkpoint near the fraction", "[sweep]") {
  test::temp_dir dir;
  const weight_matrix dist = weight_matrix::Constant(2, 8, 1.0);
  // Up to 256 records every record is a checkpoint: the split is exact.
  const std::string small = write_trace(dir, "small.jsonl", dist, 40, 64, 128);
  sweep_request req = request(small, {4}, {0});
  req.split = 0.8;
  sweep_result r = sweep_ok(req);
  CHECK(r.records == 40);
  CHECK(r.train_records == 32);
  CHECK(r.heldout_records == 8);
  CHECK(r.train_first == 2250);
  CHECK(r.train_last == 2281);
  CHECK(r.heldout_first == 2282);
  CHECK(r.heldout_last == 2289);
  CHECK(r.plan_samples == 32);  // every train record, as a default plan would sample them
  CHECK(r.heldout_samples == 8);
  // 1003 records: checkpoints every 4 records; the split is the one nearest to 0.7 x 1003.
  const std::string big = write_trace(dir, "big.jsonl", dist, 1003, 64, 128);
  req.stats = {big};
  req.split = 0.7;
  r = sweep_ok(req);
  CHECK(r.train_records == 704);
  CHECK(r.train_records + r.heldout_records == 1003);
  CHECK(r.train_last + 1 == r.heldout_first);
  // The plans get the sample one default plan keeps over the whole input (at most 512: every
  // second record here), the judging every sampled held-out record (at most 1024: all of them).
  CHECK(r.plan_samples == 352);
  CHECK(r.heldout_samples == 299);
}

TEST_CASE("sweep: output is the same for any thread count, JSON round trip and schema", "[sweep]") {
  test::temp_dir dir;
  weight_matrix dist = weight_matrix::Constant(3, 16, 1.0);
  for (int e = 0; e < 16; ++e) dist.col(e) *= 1.0 + e;
  const std::string stats = write_trace(dir, "t.jsonl", dist, 120, 512, 2048);
  sweep_request req = request(stats, {4, 8}, {0, 4, 8, 12, 16});
  req.expert_fraction = 0.25;
  expert_memory given;
  given.source = "--expert-bytes";
  given.expert_bytes = 4096;
  req.memory = given;
  req.threads = 1;
  const std::string one = sweep_json(sweep_ok(req));
  req.threads = 3;
  const std::string three = sweep_json(sweep_ok(req));
  CHECK(one == three);

  auto back = parse_sweep_json(one, "s.json");
  INFO((back.ok() ? std::string() : back.message()));
  REQUIRE(back.ok());
  CHECK(sweep_json(*back) == one);

  // The schema CI reads.
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  REQUIRE_FALSE(parser.parse(one).get(root));
  auto keys = [](simdjson::dom::object o) {
    std::set<std::string> k;
    for (auto field : o) k.insert(std::string(field.key));
    return k;
  };
  CHECK(keys(root.get_object()) == std::set<std::string>{"tool", "schema", "version", "stats",
                                                         "split", "tolerance", "expert_fraction",
                                                         "memory", "points", "recommendations",
                                                         "warnings"});
  CHECK(std::string_view(root["tool"].get_string()) == "eplb-gen sweep");
  CHECK(int64_t(root["schema"]) == 1);
  CHECK(keys(root["split"].get_object()) ==
        std::set<std::string>{"asked", "train_records", "heldout_records", "train_steps",
                              "heldout_steps", "plan_samples", "heldout_samples"});
  int planned = 0, skipped = 0;
  for (simdjson::dom::element p : root["points"].get_array()) {
    if (bool(p["planned"])) {
      ++planned;
      CHECK(keys(p.get_object()) ==
            std::set<std::string>{"ep", "redundant", "planned", "slots_per_rank", "mean", "p99",
                                  "worst", "identity_mean", "time_saved", "extra_bytes_per_gpu",
                                  "reference", "half_life"});
      CHECK(p["mean"].is_double());
      CHECK(p["time_saved"].is_double());
      CHECK(p["extra_bytes_per_gpu"].is_double());
    } else {
      ++skipped;
      CHECK(keys(p.get_object()) ==
            std::set<std::string>{"ep", "redundant", "planned", "skipped", "nearest"});
    }
  }
  CHECK(planned == 8);  // EP 4: all five; EP 8: 0, 8 and 16
  CHECK(skipped == 2);
  std::set<std::int64_t> eps;
  for (simdjson::dom::element c : root["recommendations"].get_array()) {
    CHECK(keys(c.get_object()) ==
          std::set<std::string>{"ep", "redundant", "best", "knee", "why", "knee_why"});
    eps.insert(int64_t(c["ep"]));
  }
  CHECK(eps == std::set<std::int64_t>{4, 8});
  // Exactly one reference plan per EP chose the recency weighting.
  int refs = 0;
  for (const sweep_point& p : back->points) refs += p.reference ? 1 : 0;
  CHECK(refs == 2);

  auto bad = parse_sweep_json("{\"tool\": \"eplb-gen sweep\", \"schema\": 1}", "b.json");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.message().find("b.json") != std::string::npos);
  CHECK(bad.message().find("stats") != std::string::npos);
  CHECK(parse_sweep_json("{\"tool\": \"eplb-gen eval\", \"schema\": 1}", "e.json").code() ==
        errc::invalid_value);
}

TEST_CASE("sweep: the recommendation and the knee from the figures", "[sweep]") {
  sweep_result r;
  r.tolerance = 0.005;
  auto add = [&](int redundant, double mean) {
    sweep_point p;
    p.ep = 8;
    p.redundant = redundant;
    p.planned = true;
    p.mean = mean;
    r.points.push_back(p);
  };
  add(0, 1.50);
  add(8, 1.20);
  add(16, 1.10);
  add(32, 1.052);
  add(64, 1.050);
  add(128, 1.049);
  recommend_redundant(r);
  REQUIRE(r.choices.size() == 1);
  CHECK(r.choices[0].best == 128);
  CHECK(r.choices[0].recommended == 32);  // 1.052 <= 1.049 x 1.005; 1.10 is not
  CHECK(r.choices[0].knee == 16);         // scaled gain 0.887 at 12.5% of the range
  r.tolerance = 0;
  recommend_redundant(r);
  CHECK(r.choices[0].recommended == 128);
}

TEST_CASE("sweep: bad requests are clear errors", "[sweep]") {
  CHECK(parse_int_list("0,8,16", "--redundant")->size() == 3);
  CHECK(*parse_int_list("16,0,8,8", "--redundant") == std::vector<int>{0, 8, 16});
  for (const char* bad : {"0,x", "", "0,,8", "-8", "1.5", "8,"}) {
    auto r = parse_int_list(bad, "--redundant");
    REQUIRE_FALSE(r.ok());
    CHECK(r.code() == errc::invalid_argument);
    CHECK(r.message().find("--redundant") != std::string::npos);
  }
  test::temp_dir dir;
  const std::string stats =
      write_trace(dir, "t.jsonl", weight_matrix::Constant(2, 8, 1.0), 30, 64, 128);
  sweep_request req = request(stats, {3}, {0, 2});
  auto none = run_sweep(req);  // 8 + 0 and 8 + 2 do not divide by 3
  REQUIRE_FALSE(none.ok());
  CHECK(none.code() == errc::invalid_argument);
  CHECK(none.message().find("EP 3") != std::string::npos);
  CHECK(none.message().find("1, 4") != std::string::npos);  // the valid R near 0 and 2
  req.eps = {4};
  req.split = 1.0;
  CHECK(run_sweep(req).code() == errc::invalid_argument);
  req.split = 0.8;
  req.nodes = 3;
  CHECK(run_sweep(req).code() == errc::invalid_argument);
  req.nodes.reset();
  req.steps.first = 100000;
  CHECK(run_sweep(req).code() == errc::no_records);
}
