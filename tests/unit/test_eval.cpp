// Held-out evaluation: replay figures against a hand computation, percentiles, step splits,
// the step-time model, JSON and the replay's bounded memory.

#include <simdjson.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "eplb/bounds.hpp"
#include "eplb/eval.hpp"
#include "eplb/metrics.hpp"
#include "eplb/plan.hpp"
#include "eplb/synth.hpp"

using namespace eplb;

namespace {

// Three steps of a 2-layer, 3-expert model recorded on 4 slots and 2 ranks under the map
// layer 0 [0 1 2 0], layer 1 [1 2 0 1]. Logical loads per step (layer 0 | layer 1):
//   100: [40 10 30] | [ 6 20 14]
//   110: [ 0  0  0] | [10 10 20]
//   120: [20 20 20] | [ 0 30 10]
// expert_load is per slot: an expert's load split over its slots.
std::string rec(int step, const char* load) {
  std::string s = R"({"record_type": "eplb_load_stats", "version": 1, "step": )";
  s += std::to_string(step);
  s += R"(, "num_ranks": 2, "num_layers": 2, "expert_load": )";
  s += load;
  s += R"(, "p2l_map": [[0, 1, 2, 0], [1, 2, 0, 1]]})";
  s += '\n';
  return s;
}
const std::string tiny_trace = rec(100, "[[20, 10, 30, 20], [10, 14, 6, 10]]") +
                               rec(110, "[[0, 0, 0, 0], [5, 20, 10, 5]]") +
                               rec(120, "[[10, 20, 20, 10], [15, 10, 0, 15]]");

placement tiny_mapping() {
  placement p;
  p.num_layers = 2;
  p.num_slots = 4;
  p.num_experts = 3;
  p.physical_to_logical = {0, 1, 2, 0, 1, 2, 0, 1};
  return p;
}

const topology tiny_topo{2, 3, 4, 2, 1, 1};

// Replays the tiny trace through the candidates.
eval_result replay_tiny_with(std::vector<eval_candidate> c, const replay_options& o) {
  auto rp = replayer::create(tiny_topo, std::move(c), o);
  REQUIRE(rp.ok());
  REQUIRE(read_vllm_stats_text(tiny_trace, "tiny.jsonl", stats_read_options{}, *rp, nullptr).ok());
  auto r = rp->finish();
  REQUIRE(r.ok());
  return std::move(*r);
}

eval_result replay_tiny(bool bounds, int bound_steps = 512, int threads = 0) {
  std::vector<eval_candidate> c;
  c.push_back({"identity", identity_placement(tiny_topo), true});
  c.push_back({"recorded", std::nullopt});
  c.push_back({"mapping", tiny_mapping()});
  replay_options o;
  o.bounds = bounds;
  o.bound_steps = bound_steps;
  o.threads = threads;
  return replay_tiny_with(std::move(c), o);
}

std::filesystem::path temp_dir(const char* name) {
  auto dir = std::filesystem::temp_directory_path() / (std::string("eplb_eval_") + name);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

}  // namespace

TEST_CASE("replay matches a hand computation on a tiny trace") {
  const eval_result r = replay_tiny(false);
  REQUIRE(r.steps == std::vector<std::int64_t>{100, 110, 120});
  REQUIRE(r.candidates.size() == 3);
  const candidate_report& m = r.candidates[2];
  // Step 100. Layer 0: rank 0 holds {0 (half of 40), 1} = 20 + 10 = 30, rank 1 {2, 0} = 30 + 20
  // = 50; mean 40. Layer 1: expert 1 has two slots: rank 0 {1, 2} = 10 + 14 = 24, rank 1 {0, 1}
  // = 6 + 10 = 16; mean 20. Model: (50 + 24) / (40 + 20).
  // Step 110. Layer 0 idle; layer 1: rank 0 = 5 + 20 = 25, rank 1 = 10 + 5 = 15. 25 / 20.
  // Step 120. Layer 0: 10 + 20 = 30 and 20 + 10 = 30; layer 1: 15 + 10 = 25 and 0 + 15 = 15.
  // Model: (30 + 25) / (30 + 20).
  REQUIRE(m.step_imbalance.size() == 3);
  CHECK(m.step_imbalance[0] == Approx(74.0 / 60));
  CHECK(m.step_imbalance[1] == Approx(25.0 / 20));
  CHECK(m.step_imbalance[2] == Approx(55.0 / 50));
  CHECK(m.imbalance.mean == Approx((74.0 / 60 + 1.25 + 1.1) / 3));
  // Nearest rank over [1.1, 1.2333, 1.25]: p50 is the 2nd, p90 and p99 the 3rd.
  CHECK(m.imbalance.p50 == Approx(74.0 / 60));
  CHECK(m.imbalance.p90 == Approx(1.25));
  CHECK(m.imbalance.p99 == Approx(1.25));
  CHECK(m.imbalance.worst == Approx(1.25));
  CHECK(m.imbalance.worst_step == 110);
  // Per layer, over the steps in which the layer had load: layer 0 (50/40 + 30/30) / 2, layer 1
  // (24/20 + 25/20 + 25/20) / 3.
  REQUIRE(m.layer_mean_imbalance.size() == 2);
  CHECK(m.layer_mean_imbalance[0] == Approx((1.25 + 1.0) / 2));
  CHECK(m.layer_mean_imbalance[1] == Approx((1.2 + 1.25 + 1.25) / 3));
  // Busiest rank per (step, layer) with load: layer 0: rank 1, then a tie (first rank wins);
  // layer 1: rank 0 three times.
  CHECK(m.busiest_count == std::vector<std::int64_t>{4, 1});
  // Summed rank loads: layer 0 (30 + 30, 50 + 30) over a summed mean 70; layer 1 (24 + 25 + 25,
  // 16 + 15 + 15) over 60; over the model 134 and 126 of 260.
  CHECK(m.relative_rank_load(0, 0) == Approx(60.0 / 70));
  CHECK(m.relative_rank_load(0, 1) == Approx(80.0 / 70));
  CHECK(m.relative_rank_load(1, 0) == Approx(74.0 / 60));
  CHECK(m.relative_rank_load(1, 1) == Approx(46.0 / 60));
  CHECK(m.rank_share[0] == Approx(134.0 * 2 / 260));
  CHECK(m.rank_share[1] == Approx(126.0 * 2 / 260));
  CHECK(m.replicas == std::vector<std::int32_t>{2, 1, 1, 1, 2, 1});
  // Identity arange(4) % 3 = [0 1 2 0] in both layers; layer 1 then holds rank 0 {0, 1}, rank 1
  // {2, 0}: step 100 3 + 20 = 23 vs 14 + 3; step 110 5 + 10 vs 20 + 5 = 25; step 120 0 + 30 = 30.
  const candidate_report& id = r.candidates[0];
  CHECK(id.step_imbalance[0] == Approx(73.0 / 60));
  CHECK(id.step_imbalance[1] == Approx(25.0 / 20));
  CHECK(id.step_imbalance[2] == Approx(60.0 / 50));
  // The recorded map is the mapping itself, recorded on 2 ranks: the same figures.
  const candidate_report& rec = r.candidates[1];
  CHECK(rec.recorded);
  CHECK(rec.num_ranks == 2);
  CHECK(rec.num_slots == 4);
  CHECK(rec.step_imbalance == m.step_imbalance);
  CHECK(rec.replicas.empty());
  // The summed logical loads of the judged steps.
  CHECK(r.expert_load(0, 0) == 60);
  CHECK(r.expert_load(1, 2) == 44);
}

TEST_CASE("replay agrees with measure_imbalance step by step and with the bound") {
  const eval_result r = replay_tiny(true);
  const std::vector<std::vector<double>> loads = {
      {40, 10, 30, 6, 20, 14}, {0, 0, 0, 10, 10, 20}, {20, 20, 20, 0, 30, 10}};
  bound_options bo;
  bo.forbid_duplicates = false;
  bo.exact_knapsack = false;
  REQUIRE(r.bound.has_value());
  for (std::size_t s = 0; s < loads.size(); ++s) {
    weight_matrix w(2, 3);
    for (int i = 0; i < 6; ++i) w(i / 3, i % 3) = loads[s][static_cast<std::size_t>(i)];
    const imbalance_report ref = measure_imbalance(w, tiny_mapping(), tiny_topo);
    CHECK(r.candidates[2].step_imbalance[s] == Approx(ref.overall));
    double sum_lb = 0;
    double sum_max = 0;
    for (int l = 0; l < 2; ++l) {
      sum_lb += lower_bound_layer(w.row(l).data(), 3, 4, 2, bo).best;
      sum_max += ref.layer_max[static_cast<std::size_t>(l)];
    }
    REQUIRE(r.candidates[2].step_gap.size() == 3);
    CHECK(r.candidates[2].step_gap[s] == Approx(sum_max / sum_lb - 1));
    CHECK(r.step_bound[s] == Approx(sum_lb / (w.sum() / 2)));
    CHECK(r.step_bound[s] <= r.candidates[2].step_imbalance[s] + 1e-12);
  }
  CHECK(r.candidates[2].gap.has_value());
  CHECK(r.bound_steps == r.steps);
  // Computed as the steps are read (bound_steps = 0), or at the end on at most 2 kept steps.
  const eval_result all = replay_tiny(true, 0);
  CHECK(all.bound_steps == r.bound_steps);
  CHECK(all.step_bound == r.step_bound);
  CHECK(all.candidates[2].step_gap == r.candidates[2].step_gap);
  const eval_result two = replay_tiny(true, 2);
  CHECK(two.bound_steps == std::vector<std::int64_t>{100, 120});  // indices 0 and 2
  CHECK(two.step_bound[1] == r.step_bound[2]);
  CHECK(two.candidates[2].step_gap[1] == r.candidates[2].step_gap[2]);
  CHECK_FALSE(replay_tiny(false).bound.has_value());
  // The bound runs on worker threads; the figures do not depend on how many.
  CHECK(replay_tiny(true, 512, 1).step_bound == replay_tiny(true, 512, 3).step_bound);
}

TEST_CASE("replay rejects layouts that do not fit and records of another shape") {
  placement bad = tiny_mapping();
  bad.physical_to_logical[3] = 7;
  std::vector<eval_candidate> c;
  c.push_back({"bad.jsonl", bad});
  auto rp = replayer::create(tiny_topo, std::move(c), replay_options{});
  REQUIRE_FALSE(rp.ok());
  CHECK(rp.message().find("bad.jsonl") != std::string::npos);

  std::vector<eval_candidate> ok;
  ok.push_back({"m", tiny_mapping()});
  topology other = tiny_topo;
  other.num_experts = 2;
  other.num_slots = 4;
  placement two = identity_placement(other);
  std::vector<eval_candidate> c2;
  c2.push_back({"two", two});
  auto rp2 = replayer::create(other, std::move(c2), replay_options{});
  REQUIRE(rp2.ok());
  const status s =
      read_vllm_stats_text(tiny_trace, "tiny.jsonl", stats_read_options{}, *rp2, nullptr);
  CHECK(s.code() == errc::shape_mismatch);
  auto empty = replayer::create(tiny_topo, std::move(ok), replay_options{});
  REQUIRE(empty.ok());
  CHECK(empty->finish().code() == errc::no_records);
}

TEST_CASE("summarize_steps uses nearest-rank percentiles") {
  std::vector<double> v;
  std::vector<std::int64_t> steps;
  for (int i = 1; i <= 200; ++i) {
    v.push_back(201 - i);  // 200 .. 1
    steps.push_back(i);
  }
  const step_distribution d = summarize_steps(v, steps);
  CHECK(d.mean == Approx(100.5));
  CHECK(d.p50 == 100);  // ceil(0.5 * 200) = 100th smallest
  CHECK(d.p90 == 180);
  CHECK(d.p99 == 198);
  CHECK(d.worst == 200);
  CHECK(d.worst_step == 1);
  CHECK(summarize_steps({}, {}).mean == 0);
}

TEST_CASE("the step-time model reproduces the 6.6% example") {
  // 20% of step time in expert compute, imbalance 1.6 -> 1.07: 0.2 * (1 - 1.07 / 1.6).
  CHECK(predicted_time_saved(0.2, 1.07, 1.6) == Approx(0.06625));
  CHECK(predicted_time_saved(0.2, 1.6, 1.6) == 0);
  CHECK(predicted_time_saved(0.5, 1.0, 2.0) == Approx(0.25));
  CHECK(predicted_time_saved(0.2, 1.0, 0.0) == 0);
}

TEST_CASE("split_step_list splits by count and never shares a step") {
  std::vector<std::int64_t> steps;
  for (int i = 10; i >= 1; --i) steps.push_back(i * 10);  // any order
  auto s = split_step_list(steps, 0.7);
  REQUIRE(s.ok());
  CHECK(*s->train.first == 10);
  CHECK(*s->train.last == 70);
  CHECK(*s->held_out.first == 80);
  CHECK(*s->held_out.last == 100);
  CHECK(s->train_records == 7);
  CHECK(s->held_out_records == 3);

  auto dup = split_step_list({1, 2, 3, 3, 3, 4}, 0.5);  // boundary inside the run of 3s
  REQUIRE(dup.ok());
  CHECK(*dup->train.last == 2);
  CHECK(*dup->held_out.first == 3);
  CHECK(dup->train_records == 2);

  auto first = split_step_list({5, 5, 5, 6}, 0.5);  // the first step fills the train share
  REQUIRE(first.ok());
  CHECK(*first->train.last == 5);
  CHECK(*first->held_out.first == 6);

  auto tiny = split_step_list({1, 2}, 0.01);  // at least one record on each side
  REQUIRE(tiny.ok());
  CHECK(tiny->train_records == 1);

  CHECK(split_step_list({1, 2, 3}, 1.0).code() == errc::invalid_argument);
  CHECK(split_step_list({1, 2, 3}, 0.0).code() == errc::invalid_argument);
  // Too few steps is about the data, not the flag (exit status 1, not 2).
  CHECK(split_step_list({4, 4}, 0.5).code() == errc::no_records);
  CHECK(split_step_list({}, 0.5).code() == errc::no_records);
}

TEST_CASE("train and held-out step ranges are respected by plan and evaluate") {
  const auto dir = temp_dir("split");
  const std::string trace = (dir / "t.jsonl").string();
  {
    synth_options o;
    o.num_steps = 50;
    o.first_step = 1000;
    o.recording = topology{3, 8, 8, 2, 1, 1};
    weight_matrix dist = weight_matrix::Constant(3, 8, 1.0);
    dist(0, 0) = 5;
    std::ofstream out(trace);
    REQUIRE(synthesize_stats(dist, o, out).ok());
  }
  auto sp = split_steps({trace}, step_range{}, 0.7);
  REQUIRE(sp.ok());
  CHECK(*sp->train.first == 1000);
  CHECK(*sp->train.last == 1034);
  CHECK(*sp->held_out.first == 1035);
  CHECK(*sp->held_out.last == 1049);

  plan_request pr;
  pr.stats = {trace};
  pr.steps = sp->train;
  pr.ep = 2;
  pr.redundant = 2;
  auto planned = plan(pr);
  REQUIRE(planned.ok());
  CHECK(planned->read.records_selected == 35);
  CHECK(planned->read.last_step == 1034);
  CHECK(summary_json(*planned).find("\"train_steps\": {\"first\": 1000, \"last\": 1034") !=
        std::string::npos);

  eval_request er;
  er.stats = {trace};
  er.steps = sp->held_out;
  er.redundant = 2;
  er.ep = 2;
  auto judged = evaluate(er, nullptr);
  REQUIRE(judged.ok());
  REQUIRE(judged->steps.size() == 15);
  for (std::int64_t s : judged->steps) CHECK(sp->held_out.contains(s));
  CHECK(count_overlap(*judged, sp->train) == 0);
  step_range overlapping;
  overlapping.first = 1040;
  CHECK(count_overlap(*judged, overlapping) == 10);
  std::filesystem::remove_all(dir);
}

TEST_CASE("evaluate loads mapping files with the loader and names a misfit") {
  const auto dir = temp_dir("maps");
  const std::string trace = (dir / "t.jsonl").string();
  const std::string good = (dir / "good.jsonl").string();
  const std::string bad = (dir / "bad.jsonl").string();
  {
    std::ofstream(trace) << tiny_trace;
    std::ofstream(good)
        << R"({"record_type": "eplb_initial_mapping", "version": 1, )"
        << R"("num_redundant_experts": 1, "num_slots": 4, )"
        << R"("initial_global_assignments": {"0": [0, 1, 2, 0], "1": [1, 2, 0, 1]}})"
        << "\n";
    std::ofstream(bad) << R"({"record_type": "eplb_initial_mapping", "version": 1, )"
                       << R"("num_redundant_experts": 1, "num_slots": 4, )"
                       << R"("initial_global_assignments": {"0": [0, 1, 2, 0]}})"
                       << "\n";
  }
  eval_request er;
  er.stats = {trace};
  er.mappings = {good};
  er.recorded = true;
  auto r = evaluate(er, nullptr);
  REQUIRE(r.ok());
  REQUIRE(r->candidates.size() == 3);
  CHECK(r->candidates[2].name == good);
  CHECK(r->topo.num_ranks == 2);  // the records' num_ranks
  CHECK(r->topo.num_slots == 4);  // the first mapping's slots
  CHECK(r->candidates[2].step_imbalance[0] == Approx(74.0 / 60));

  er.mappings = {bad};
  auto e = evaluate(er, nullptr);
  REQUIRE_FALSE(e.ok());
  CHECK(e.message().find("bad.jsonl") != std::string::npos);

  er.mappings = {(dir / "missing.jsonl").string()};
  CHECK_FALSE(evaluate(er, nullptr).ok());
  std::filesystem::remove_all(dir);
}

TEST_CASE("eval_json is valid JSON with the figures") {
  const eval_result r = replay_tiny(true);
  eval_context ctx;
  ctx.files = {"tiny \"quoted\".jsonl"};
  ctx.expert_fraction = 0.2;
  step_range train;
  train.first = 0;
  train.last = 99;
  ctx.train_steps = train;
  const std::string json = eval_json(r, ctx);
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  REQUIRE(parser.parse(json).get(doc) == simdjson::SUCCESS);
  CHECK(std::string_view(doc["stats"]["files"].at(0)) == "tiny \"quoted\".jsonl");
  CHECK(int64_t(doc["stats"]["judged_records"]) == 3);
  CHECK(int64_t(doc["train_steps"]["last"]) == 99);
  auto maps = doc["mappings"];
  CHECK(std::string_view(maps.at(2)["name"]) == "mapping");
  CHECK(double(maps.at(2)["imbalance"]["mean"]) == Approx((74.0 / 60 + 1.25 + 1.1) / 3));
  const double id_mean = (73.0 / 60 + 1.25 + 1.2) / 3;
  CHECK(double(maps.at(0)["imbalance"]["mean"]) == Approx(id_mean));
  CHECK(double(maps.at(2)["predicted_time_saved"]) ==
        Approx(0.2 * (1 - ((74.0 / 60 + 1.25 + 1.1) / 3) / id_mean)));
  CHECK(int64_t(maps.at(2)["busiest_ranks"].at(0)["rank"]) == 0);
  CHECK(maps.at(1)["gap"].is_object());  // recorded on the same slots and ranks
  CHECK(int64_t(doc["bound_records"]) == 3);
  // The baseline is the candidate flagged identity, whatever its name.
  CHECK(find_identity(r) == &r.candidates[0]);
  eval_result renamed = r;
  renamed.candidates[0].identity = false;
  CHECK(find_identity(renamed) == nullptr);
  CHECK(eval_json(renamed, ctx).find("\"predicted_time_saved\": null") != std::string::npos);
}

TEST_CASE("replay keeps bounded series and evenly spaced samples") {
  const topology t{2, 4, 4, 2, 1, 1};
  weight_matrix dist = weight_matrix::Constant(2, 4, 1.0);
  synth_options o;
  o.num_steps = 1000;
  o.first_step = 0;
  o.recording = t;
  o.min_batch_tokens = 16;
  o.max_batch_tokens = 64;
  std::vector<eval_candidate> c;
  c.push_back({"identity", identity_placement(t)});
  replay_options ro;
  ro.bounds = false;
  ro.series_buckets = 10;
  ro.sampled_steps = 7;
  auto rp = replayer::create(t, std::move(c), ro);
  REQUIRE(rp.ok());
  REQUIRE(synthesize_records(dist, o, *rp).ok());
  auto r = rp->finish();
  REQUIRE(r.ok());
  REQUIRE(r->steps.size() == 1000);
  // 1000 steps in at most 10 buckets: width 128 (doubling from 1), 8 buckets.
  CHECK(r->buckets.width == 128);
  CHECK(r->buckets.count == 8);
  CHECK(r->bucket_first_step.size() == 8);
  CHECK(r->bucket_first_step[1] == 128);
  const candidate_report& id = r->candidates[0];
  REQUIRE(id.bucket_mean.size() == 8);
  // Each bucket's mean is the mean of its steps' imbalance; its max the largest.
  double sum = 0;
  double mx = 0;
  for (int i = 128; i < 256; ++i) {
    sum += id.step_imbalance[static_cast<std::size_t>(i)];
    mx = std::max(mx, id.step_imbalance[static_cast<std::size_t>(i)]);
  }
  CHECK(id.bucket_mean[1] == Approx(sum / 128));
  CHECK(id.bucket_max[1] == mx);
  CHECK(id.bucket_layer_mean.size() == 8 * 2);
  // At most 7 samples, evenly spaced (stride 256 after doubling): steps 0, 256, 512, 768.
  CHECK(r->sampled_steps == std::vector<std::int64_t>{0, 256, 512, 768});
  CHECK(id.sampled_relative_load.size() == 4 * 2 * 2);
}

TEST_CASE("the regression gate compares each mapping file with the baseline") {
  // identity's mean per-step imbalance is (73/60 + 1.25 + 1.2) / 3, the mapping's
  // (74/60 + 1.25 + 1.1) / 3 (see the hand computation above).
  const double id_mean = (73.0 / 60 + 1.25 + 1.2) / 3;
  const double map_mean = (74.0 / 60 + 1.25 + 1.1) / 3;
  std::vector<eval_candidate> c;
  c.push_back({"identity", identity_placement(tiny_topo), true});
  c.push_back({"recorded", std::nullopt});
  c.push_back({"new.jsonl", identity_placement(tiny_topo)});  // a new mapping, worse
  c.push_back({"deployed.jsonl", tiny_mapping(), false, true});
  const eval_result r = replay_tiny_with(std::move(c), replay_options{});
  REQUIRE(r.candidates.size() == 4);
  CHECK(r.candidates[3].baseline);
  CHECK_FALSE(r.candidates[2].baseline);

  // Only the mapping files are judged: not identity, recorded or the baseline itself.
  const auto strict = judge_regression(r, 0.005);
  REQUIRE(strict.has_value());
  CHECK(strict->baseline == "deployed.jsonl");
  CHECK(strict->baseline_mean == Approx(map_mean));
  REQUIRE(strict->checks.size() == 1);
  CHECK(strict->checks[0].name == "new.jsonl");
  CHECK(strict->checks[0].mean == Approx(id_mean));
  CHECK(strict->checks[0].regression == Approx(id_mean / map_mean - 1));  // about +2.3%
  CHECK_FALSE(strict->checks[0].pass);
  CHECK_FALSE(strict->pass);
  const auto lenient = judge_regression(r, 0.03);
  REQUIRE(lenient.has_value());
  CHECK(lenient->pass);

  // The JSON carries the gate when a threshold is set, and null otherwise.
  eval_context ctx;
  ctx.max_regression = 0.005;
  const std::string json = eval_json(r, ctx);
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  REQUIRE(parser.parse(json).get(doc) == simdjson::SUCCESS);
  CHECK(bool(doc["mappings"].at(3)["baseline"]));
  CHECK_FALSE(bool(doc["mappings"].at(2)["baseline"]));
  CHECK(std::string_view(doc["gate"]["baseline"]) == "deployed.jsonl");
  CHECK_FALSE(bool(doc["gate"]["pass"]));
  CHECK(double(doc["gate"]["max_regression"]) == Approx(0.005));
  CHECK(std::string_view(doc["gate"]["mappings"].at(0)["name"]) == "new.jsonl");
  CHECK(double(doc["gate"]["mappings"].at(0)["regression"]) == Approx(id_mean / map_mean - 1));
  ctx.max_regression.reset();
  simdjson::dom::element plain;
  const std::string json2 = eval_json(r, ctx);
  REQUIRE(parser.parse(json2).get(plain) == simdjson::SUCCESS);
  CHECK(plain["gate"].is_null());

  // Without a baseline there is no gate.
  CHECK_FALSE(judge_regression(replay_tiny(false), 0.005).has_value());
}
