// Mapping writers for SGLang, TensorRT-LLM, vllm-ascend and the plain JSON. Each output is checked
// byte-exactly against the example of shared/formats/other-engines.md where there is one, and by
// applying the target engine's loading rules to the parsed output.
#include <simdjson.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdint>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "eplb/export.hpp"
#include "eplb/sha256.hpp"

namespace {

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

eplb::topology make_topo(int layers, int experts, int slots, int ranks) {
  eplb::topology t;
  t.num_layers = layers;
  t.num_experts = experts;
  t.num_slots = slots;
  t.num_ranks = ranks;
  return t;
}

eplb::placement make_placement(const eplb::topology& t, const std::vector<std::int32_t>& p2l) {
  eplb::placement p;
  p.num_layers = t.num_layers;
  p.num_slots = t.num_slots;
  p.num_experts = t.num_experts;
  p.physical_to_logical = p2l;
  return p;
}

// The example of other-engines.md: E=4, 2 redundant, EP=2, MoE layers = decoder layers 1 and 2.
const eplb::topology k_topo = make_topo(2, 4, 6, 2);
const eplb::placement k_place = make_placement(k_topo, {0, 2, 1, 3, 0, 2, 3, 1, 0, 2, 1, 3});

std::vector<std::vector<std::int64_t>> to_rows(simdjson::dom::array rows) {
  std::vector<std::vector<std::int64_t>> out;
  for (auto row : rows) {
    out.emplace_back();
    simdjson::dom::array values = row.get_array();
    for (auto v : values) out.back().push_back(v.get_int64().value());
  }
  return out;
}

// SGLang's init_by_mapping rules: exactly one key, one row per decoder layer, P entries in
// [0, E), every expert present, P = E + redundant and divisible by the EP size.
void check_sglang_rules(const std::string& text, int num_hidden, int experts, int slots, int ep) {
  simdjson::dom::parser parser;
  simdjson::dom::element root = parser.parse(text);
  simdjson::dom::object obj = root.get_object();
  REQUIRE(obj.size() == 1);
  simdjson::dom::array rows;
  REQUIRE(obj["physical_to_logical_map"].get_array().get(rows) == simdjson::SUCCESS);
  const auto m = to_rows(rows);
  REQUIRE(static_cast<int>(m.size()) == num_hidden);
  REQUIRE(slots % ep == 0);
  for (const auto& row : m) {
    REQUIRE(static_cast<int>(row.size()) == slots);
    std::vector<int> seen(static_cast<std::size_t>(experts), 0);
    for (auto v : row) {
      REQUIRE(v >= 0);
      REQUIRE(v < experts);
      ++seen[static_cast<std::size_t>(v)];
    }
    for (int c : seen) CHECK(c >= 1);
  }
}

// A line parser for the YAML subset TensorRT-LLM's config uses.
struct trtllm_config {
  std::map<long, std::vector<long>> assignments;
  std::vector<long> key_order;
  long num_slots = -1;
  long layer_updates_per_iter = -1;
};

std::vector<long> parse_flow_list(const std::string& s) {
  REQUIRE(s.front() == '[');
  REQUIRE(s.back() == ']');
  std::vector<long> out;
  std::stringstream in(s.substr(1, s.size() - 2));
  std::string item;
  while (std::getline(in, item, ',')) out.push_back(std::stol(item));
  return out;
}

trtllm_config parse_trtllm_yaml(const std::string& text) {
  trtllm_config cfg;
  std::stringstream in(text);
  std::string line;
  bool in_map = false;
  while (std::getline(in, line)) {
    if (line == "initial_global_assignments:") {
      in_map = true;
    } else if (in_map && line.rfind("  ", 0) == 0) {
      const auto colon = line.find(": ");
      REQUIRE(colon != std::string::npos);
      const long key = std::stol(line.substr(2, colon - 2));
      cfg.key_order.push_back(key);
      cfg.assignments[key] = parse_flow_list(line.substr(colon + 2));
    } else if (line.rfind("layer_updates_per_iter: ", 0) == 0) {
      in_map = false;
      cfg.layer_updates_per_iter = std::stol(line.substr(24));
    } else if (line.rfind("num_slots: ", 0) == 0) {
      in_map = false;
      cfg.num_slots = std::stol(line.substr(11));
    } else {
      FAIL("unexpected YAML line: " << line);
    }
  }
  return cfg;
}

// MoeLoadBalancerConfig's checks plus the older "every expert present" assertion.
void check_trtllm_rules(const trtllm_config& cfg, const std::vector<long>& layers, int experts,
                        int ep) {
  REQUIRE(cfg.num_slots > 0);
  REQUIRE(cfg.num_slots % ep == 0);
  REQUIRE(cfg.layer_updates_per_iter == 0);
  for (long l : layers) {
    INFO("layer " << l);
    REQUIRE(cfg.assignments.count(l) == 1);
    const auto& a = cfg.assignments.at(l);
    REQUIRE(static_cast<long>(a.size()) == cfg.num_slots);
    for (int e = 0; e < experts; ++e) CHECK(std::count(a.begin(), a.end(), e) >= 1);
  }
}

}  // namespace

TEST_CASE("SGLang mapping: the spec example byte for byte, with a trivial dense row", "[export]") {
  eplb::sglang_export_options opts;
  opts.first_moe_layer = 1;
  opts.num_hidden_layers = 3;
  auto text = eplb::to_sglang_mapping(k_place, k_topo, opts);
  REQUIRE(text.ok());
  CHECK(*text ==
        "{\"physical_to_logical_map\": [[0, 1, 2, 3, 0, 1], [0, 2, 1, 3, 0, 2], "
        "[3, 1, 0, 2, 1, 3]]}\n");
  check_sglang_rules(*text, 3, 4, 6, 2);

  // Dense layers after the MoE layers too (e.g. an MTP layer), via explicit layer ids.
  eplb::sglang_export_options ids;
  ids.layer_ids = {1, 3};
  ids.num_hidden_layers = 5;
  auto gaps = eplb::to_sglang_mapping(k_place, k_topo, ids);
  REQUIRE(gaps.ok());
  check_sglang_rules(*gaps, 5, 4, 6, 2);
  simdjson::dom::parser parser;
  const auto rows = to_rows(parser.parse(*gaps)["physical_to_logical_map"].get_array().value());
  CHECK(rows[1] == std::vector<std::int64_t>{0, 2, 1, 3, 0, 2});
  CHECK(rows[3] == std::vector<std::int64_t>{3, 1, 0, 2, 1, 3});
  CHECK(rows[4] == std::vector<std::int64_t>{0, 1, 2, 3, 0, 1});

  // num_hidden_layers 0 means "just enough rows".
  eplb::sglang_export_options tight;
  tight.first_moe_layer = 1;
  auto t = eplb::to_sglang_mapping(k_place, k_topo, tight);
  REQUIRE(t.ok());
  CHECK(*t == *text);

  eplb::sglang_export_options too_small;
  too_small.first_moe_layer = 2;
  too_small.num_hidden_layers = 3;
  auto bad = eplb::to_sglang_mapping(k_place, k_topo, too_small);
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.code() == eplb::errc::invalid_argument);
  CHECK(contains(bad.message(), "num_hidden_layers"));

  eplb::sglang_export_options unsorted;
  unsorted.layer_ids = {3, 1};
  CHECK_FALSE(eplb::to_sglang_mapping(k_place, k_topo, unsorted).ok());
}

TEST_CASE("TensorRT-LLM YAML: the spec example byte for byte", "[export]") {
  eplb::trtllm_export_options opts;
  opts.first_moe_layer = 3;
  auto text = eplb::to_trtllm_yaml(k_place, k_topo, opts);
  REQUIRE(text.ok());
  CHECK(*text ==
        "initial_global_assignments:\n"
        "  3: [0, 2, 1, 3, 0, 2]\n"
        "  4: [3, 1, 0, 2, 1, 3]\n"
        "layer_updates_per_iter: 0\n"
        "num_slots: 6\n");
  const auto cfg = parse_trtllm_yaml(*text);
  check_trtllm_rules(cfg, {3, 4}, 4, 2);

  // PyYAML sorts int keys numerically: 9 before 10 before 61.
  const auto topo3 = make_topo(3, 4, 6, 2);
  const auto p3 = make_placement(topo3, {0, 1, 2, 3, 0, 1, 0, 2, 1, 3, 0, 2, 3, 1, 0, 2, 1, 3});
  eplb::trtllm_export_options ids;
  ids.layer_ids = {9, 10, 61};
  ids.layer_updates_per_iter = 0;
  auto t3 = eplb::to_trtllm_yaml(p3, topo3, ids);
  REQUIRE(t3.ok());
  const auto cfg3 = parse_trtllm_yaml(*t3);
  CHECK(cfg3.key_order == std::vector<long>{9, 10, 61});
  check_trtllm_rules(cfg3, {9, 10, 61}, 4, 2);
  CHECK(cfg3.assignments.at(61) == std::vector<long>{3, 1, 0, 2, 1, 3});

  eplb::trtllm_export_options negative;
  negative.layer_updates_per_iter = -1;
  CHECK_FALSE(eplb::to_trtllm_yaml(k_place, k_topo, negative).ok());
}

TEST_CASE("vllm-ascend expert map: matches the spec example and its reader rules", "[export]") {
  // The spec example holds the same placement: device 0 = first 3 slots, device 1 = last 3.
  const std::string spec = R"({"moe_layer_count": 2,
 "layer_list": [
  {"layer_id": 0, "device_count": 2, "device_list": [
    {"device_id": 0, "device_expert": [0, 2, 1]}, {"device_id": 1, "device_expert": [3, 0, 2]}]},
  {"layer_id": 1, "device_count": 2, "device_list": [
    {"device_id": 0, "device_expert": [3, 1, 0]}, {"device_id": 1, "device_expert": [2, 1, 3]}]}]})";
  auto text = eplb::to_ascend_expert_map(k_place, k_topo);
  REQUIRE(text.ok());

  simdjson::dom::parser p1;
  simdjson::dom::parser p2;
  simdjson::dom::element ours = p1.parse(*text);
  simdjson::dom::element theirs = p2.parse(spec);
  // Same document: compare the canonical minified forms.
  CHECK(simdjson::minify(ours) == simdjson::minify(theirs));

  // Reader rules: layer_list read by position, equal lengths per device, no expert twice on one
  // device, redundant = total - E.
  REQUIRE(ours["moe_layer_count"].get_int64().value() == 2);
  simdjson::dom::array layers = ours["layer_list"].get_array();
  REQUIRE(layers.size() == 2);
  for (auto layer : layers) {
    simdjson::dom::array devices = layer["device_list"].get_array();
    REQUIRE(layer["device_count"].get_int64().value() == 2);
    REQUIRE(devices.size() == 2);
    std::size_t total = 0;
    std::int64_t rank = 0;
    for (auto dev : devices) {
      CHECK(dev["device_id"].get_int64().value() == rank++);
      simdjson::dom::array experts = dev["device_expert"].get_array();
      CHECK(experts.size() == 3);
      total += experts.size();
      std::vector<int> seen(4, 0);
      for (auto e : experts) CHECK(++seen[static_cast<std::size_t>(e.get_int64().value())] == 1);
    }
    CHECK(total - 4 == 2);
  }
}

TEST_CASE("vllm-ascend expert map refuses an expert twice on one device", "[export]") {
  // Layer 1 puts expert 1 into slots 3 and 4, both on rank 1.
  const auto p = make_placement(k_topo, {0, 2, 1, 3, 0, 2, 3, 0, 2, 1, 1, 0});
  REQUIRE(eplb::validate_placement(p, k_topo).ok());
  auto text = eplb::to_ascend_expert_map(p, k_topo);
  REQUIRE_FALSE(text.ok());
  CHECK(text.code() == eplb::errc::invalid_value);
  CHECK(contains(text.message(), "layer 1 rank 1"));
  CHECK(contains(text.message(), "logical expert 1"));
  // The other formats accept it (their engines do).
  CHECK(eplb::to_sglang_mapping(p, k_topo, {}).ok());
  CHECK(eplb::to_trtllm_yaml(p, k_topo, {}).ok());
}

TEST_CASE("writers refuse an invalid placement", "[export]") {
  const auto missing = make_placement(k_topo, {0, 0, 1, 1, 2, 2, 0, 1, 2, 3, 0, 1});
  CHECK_FALSE(eplb::to_sglang_mapping(missing, k_topo, {}).ok());
  CHECK_FALSE(eplb::to_trtllm_yaml(missing, k_topo, {}).ok());
  CHECK_FALSE(eplb::to_ascend_expert_map(missing, k_topo).ok());
  CHECK_FALSE(eplb::to_plain_json(missing, k_topo, {}).ok());
  const auto bad_topo = make_topo(2, 4, 6, 4);  // 6 slots on 4 ranks
  CHECK_FALSE(eplb::to_sglang_mapping(k_place, bad_topo, {}).ok());
}

TEST_CASE("plain JSON: derived maps, provenance and determinism", "[export]") {
  // The vLLM example's mapping (vllm-offline-eplb.md section 5): E=3, R=1, EP=2.
  const auto topo = make_topo(2, 3, 4, 2);
  const auto place = make_placement(topo, {0, 2, 0, 1, 1, 2, 1, 0});
  const std::string fixture = std::string(EPLB_TEST_DATA_DIR) + "/formats/vllm_example.jsonl";
  auto source = eplb::describe_source(fixture, "vllm_jsonl");
  REQUIRE(source.ok());
  std::ifstream in(fixture, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CHECK(source->bytes == bytes.size());
  CHECK(source->sha256 == eplb::sha256_hex(bytes));
  CHECK_FALSE(eplb::describe_source(fixture + ".missing", "x").ok());

  eplb::export_metadata meta;
  meta.policy = "deepseek";
  meta.eplb_gen_version = "9.9.9";
  meta.sources.push_back(*source);
  meta.sources.push_back({"odd \"name\"\\\n.jsonl", "vllm_jsonl", 7, std::string(64, 'a')});
  meta.imbalance_before = 1.2128;
  meta.imbalance_after = 1.1231;
  meta.extra = {{"model", "example/moe-3e"}};
  auto text = eplb::to_plain_json(place, topo, meta);
  REQUIRE(text.ok());
  auto again = eplb::to_plain_json(place, topo, meta);
  REQUIRE(again.ok());
  CHECK(*again == *text);

  simdjson::dom::parser parser;
  simdjson::dom::element doc = parser.parse(*text);
  CHECK(doc["format"].get_string().value() == "eplb-gen-placement");
  CHECK(doc["version"].get_int64().value() == 1);
  CHECK(doc["num_slots"].get_int64().value() == 4);
  CHECK(to_rows(doc["physical_to_logical"].get_array()) ==
        std::vector<std::vector<std::int64_t>>{{0, 2, 0, 1}, {1, 2, 1, 0}});
  // Hand-derived: layer 0 expert 0 in slots 0 and 2, expert 1 in 3, expert 2 in 1; layer 1
  // expert 0 in 3, expert 1 in 0 and 2, expert 2 in 1.
  std::vector<std::vector<std::vector<std::int64_t>>> l2p;
  for (auto layer : doc["logical_to_physical"].get_array()) {
    l2p.push_back(to_rows(layer.get_array()));
  }
  CHECK(l2p == std::vector<std::vector<std::vector<std::int64_t>>>{{{0, 2}, {3}, {1}},
                                                                   {{3}, {0, 2}, {1}}});
  CHECK(to_rows(doc["replica_count"].get_array()) ==
        std::vector<std::vector<std::int64_t>>{{2, 1, 1}, {1, 2, 1}});

  simdjson::dom::element m = doc["meta"];
  CHECK(m["eplb_gen_version"].get_string().value() == "9.9.9");
  CHECK(m["policy"].get_string().value() == "deepseek");
  CHECK(m["model"].get_string().value() == "example/moe-3e");
  CHECK(m["topology"]["num_redundant_experts"].get_int64().value() == 1);
  CHECK(m["topology"]["num_ranks"].get_int64().value() == 2);
  CHECK(m["predicted_imbalance"]["before"].get_double().value() == 1.2128);
  CHECK(m["predicted_imbalance"]["after"].get_double().value() == 1.1231);
  simdjson::dom::array sources = m["sources"];
  REQUIRE(sources.size() == 2);
  CHECK(sources.at(0)["sha256"].get_string().value() == source->sha256);
  CHECK(sources.at(0)["bytes"].get_int64().value() == static_cast<std::int64_t>(bytes.size()));
  CHECK(sources.at(1)["path"].get_string().value() == "odd \"name\"\\\n.jsonl");
  CHECK(contains(*text, "\"before\": 1.2128, \"after\": 1.1231"));

  // Empty metadata: the library version, nulls for predictions, an empty source list.
  auto bare = eplb::to_plain_json(place, topo, {});
  REQUIRE(bare.ok());
  simdjson::dom::parser p2;
  simdjson::dom::element bdoc = p2.parse(*bare);
  const std::string_view version = bdoc["meta"]["eplb_gen_version"].get_string().value();
  CHECK_FALSE(version.empty());
  CHECK(version != "unknown");  // the build passes EPLB_VERSION to the library
  CHECK(bdoc["meta"]["predicted_imbalance"]["after"].is_null());
  CHECK(bdoc["meta"]["sources"].get_array().value().size() == 0);

  eplb::export_metadata nan;
  nan.imbalance_after = std::numeric_limits<double>::quiet_NaN();
  CHECK_FALSE(eplb::to_plain_json(place, topo, nan).ok());
  eplb::export_metadata reserved;
  reserved.extra = {{"policy", "x"}};
  CHECK_FALSE(eplb::to_plain_json(place, topo, reserved).ok());
}
