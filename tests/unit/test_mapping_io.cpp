// Mapping readers: every writer's output reads back to the same placement (all five formats), the
// spec examples of shared/formats parse to the placements they describe, and broken files are
// refused with the line, column and field of the first problem (positions counted by hand).
#include <catch2/catch.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "eplb/loader.hpp"
#include "eplb/mapping.hpp"
#include "eplb/mapping_io.hpp"

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

// The example of other-engines.md: E=4, 2 redundant, EP=2 (no expert twice on a rank).
const eplb::topology k_topo = make_topo(2, 4, 6, 2);
const eplb::placement k_place = make_placement(k_topo, {0, 2, 1, 3, 0, 2, 3, 1, 0, 2, 1, 3});

// A larger one: L=3, E=8, P=12, EP=4, expert 7 is only in the last slot of each row (so an E
// inferred from the ids must still come out 8), replicas on different ranks.
const eplb::topology k_topo2 = make_topo(3, 8, 12, 4);
const eplb::placement k_place2 = make_placement(k_topo2, {0, 1, 2, 3, 4, 5, 6, 0, 1, 2, 3, 7,  //
                                                          5, 4, 0, 6, 1, 2, 3, 5, 4, 0, 1, 7,  //
                                                          3, 0, 1, 2, 4, 5, 6, 0, 3, 1, 2, 7});

const eplb::mapping_format k_all[] = {eplb::mapping_format::vllm, eplb::mapping_format::sglang,
                                      eplb::mapping_format::trtllm, eplb::mapping_format::ascend,
                                      eplb::mapping_format::json};

std::string render(eplb::mapping_format f, const eplb::placement& p, const eplb::topology& t,
                   int first_moe_layer = 0) {
  eplb::mapping_render_options o;
  o.layers.first_moe_layer = first_moe_layer;
  o.meta.policy = "deepseek";
  auto text = eplb::render_mapping(f, p, t, o);
  REQUIRE(text.ok());
  return *text;
}

eplb::mapping_file read_ok(const std::string& text, eplb::mapping_format f,
                           const eplb::mapping_read_options& o = {}) {
  auto m = eplb::read_mapping_text(text, "m", f, o);
  INFO((m.ok() ? std::string() : m.message()));
  REQUIRE(m.ok());
  return *m;
}

std::string read_error(const std::string& text, eplb::mapping_format f,
                       const eplb::mapping_read_options& o = {}) {
  auto m = eplb::read_mapping_text(text, "m", f, o);
  REQUIRE_FALSE(m.ok());
  return m.message();
}

}  // namespace

TEST_CASE("mapping format names and default file names", "[mapping_io]") {
  for (const auto f : k_all) {
    auto parsed = eplb::parse_mapping_format(eplb::mapping_format_name(f));
    REQUIRE(parsed.ok());
    CHECK(*parsed == f);
  }
  CHECK(std::string(eplb::default_mapping_file_name(eplb::mapping_format::vllm)) ==
        "mapping.jsonl");
  CHECK(std::string(eplb::default_mapping_file_name(eplb::mapping_format::sglang)) ==
        "sglang_expert_location.json");
  CHECK(std::string(eplb::default_mapping_file_name(eplb::mapping_format::trtllm)) ==
        "trtllm_eplb.yaml");
  CHECK(std::string(eplb::default_mapping_file_name(eplb::mapping_format::ascend)) ==
        "ascend_expert_map.json");
  CHECK(std::string(eplb::default_mapping_file_name(eplb::mapping_format::json)) ==
        "placement.json");
  auto bad = eplb::parse_mapping_format("yaml");
  REQUIRE_FALSE(bad.ok());
  CHECK(contains(bad.message(), "vllm, sglang, trtllm, ascend or json"));
}

TEST_CASE("every writer's output is detected and reads back to the same placement",
          "[mapping_io]") {
  for (const auto& [topo, place] : {std::pair{k_topo, k_place}, std::pair{k_topo2, k_place2}}) {
    for (const auto f : k_all) {
      INFO(eplb::mapping_format_name(f));
      const std::string text = render(f, place, topo);
      auto detected = eplb::detect_mapping_format_text(text, "m");
      REQUIRE(detected.ok());
      CHECK(*detected == f);
      const eplb::mapping_file m = read_ok(text, f);
      CHECK(m.format == f);
      CHECK(m.place.num_layers == topo.num_layers);
      CHECK(m.place.num_slots == topo.num_slots);
      CHECK(m.place.num_experts == topo.num_experts);
      CHECK(m.place.physical_to_logical == place.physical_to_logical);
      // Only the vllm-ascend map and the plain JSON state the EP size.
      const bool states_ep = f == eplb::mapping_format::ascend || f == eplb::mapping_format::json;
      CHECK(m.num_ranks == (states_ep ? topo.num_ranks : 0));
      // Rendering what was read gives the same bytes again.
      CHECK(render(f, m.place, topo) == text);
    }
  }
}

TEST_CASE("layer-keyed formats keep the decoder-layer ids", "[mapping_io]") {
  // MoE layers are decoder layers 3, 4, 5 (DeepSeek-V3 style).
  const std::string sg = render(eplb::mapping_format::sglang, k_place2, k_topo2, 3);
  const eplb::mapping_file s = read_ok(sg, eplb::mapping_format::sglang);
  // Without options every row is taken: 3 trivial dense rows + 3 MoE rows.
  CHECK(s.place.num_layers == 6);
  CHECK(s.num_hidden_layers == 6);
  eplb::mapping_read_options o;
  o.num_layers = 3;  // the last 3 rows by default
  const eplb::mapping_file s3 = read_ok(sg, eplb::mapping_format::sglang, o);
  CHECK(s3.place.physical_to_logical == k_place2.physical_to_logical);
  CHECK(s3.layer_ids == std::vector<int>{3, 4, 5});
  o.num_layers = 0;
  o.first_moe_layer = 3;
  CHECK(read_ok(sg, eplb::mapping_format::sglang, o).place.physical_to_logical ==
        k_place2.physical_to_logical);

  const std::string yaml = render(eplb::mapping_format::trtllm, k_place2, k_topo2, 3);
  const eplb::mapping_file t = read_ok(yaml, eplb::mapping_format::trtllm);
  CHECK(t.layer_ids == std::vector<int>{3, 4, 5});
  CHECK(t.place.physical_to_logical == k_place2.physical_to_logical);
  eplb::mapping_read_options from4;
  from4.first_moe_layer = 4;
  from4.num_layers = 3;
  CHECK(contains(read_error(yaml, eplb::mapping_format::trtllm, from4), "layer_idx 6 not found"));
}

TEST_CASE("the spec examples parse to the placements they describe", "[mapping_io]") {
  // other-engines.md section 1 (3 decoder layers, layer 0 dense).
  const std::string sg =
      R"({"physical_to_logical_map": [[0, 1, 2, 3, 0, 1], [0, 2, 1, 3, 0, 2], [3, 1, 0, 2, 1, 3]]})";
  eplb::mapping_read_options o;
  o.first_moe_layer = 1;
  o.num_ranks = 2;
  const eplb::mapping_file s = read_ok(sg, eplb::mapping_format::sglang, o);
  CHECK(s.place.physical_to_logical == k_place.physical_to_logical);
  CHECK(s.place.num_experts == 4);
  CHECK(s.layer_ids == std::vector<int>{1, 2});

  // Section 2.
  const std::string yaml =
      "initial_global_assignments:\n  3: [0, 2, 1, 3, 0, 2]\n  4: [3, 1, 0, 2, 1, 3]\n"
      "layer_updates_per_iter: 0\nnum_slots: 6\n";
  auto detected = eplb::detect_mapping_format_text(yaml, "y");
  REQUIRE(detected.ok());
  CHECK(*detected == eplb::mapping_format::trtllm);
  const eplb::mapping_file t = read_ok(yaml, eplb::mapping_format::trtllm);
  CHECK(t.place.physical_to_logical == k_place.physical_to_logical);
  CHECK(t.layer_ids == std::vector<int>{3, 4});

  // Section 3: E = 4 from the ids, k = 3, EP = 2.
  const std::string ascend = R"({"moe_layer_count": 2,
 "layer_list": [
  {"layer_id": 0, "device_count": 2, "device_list": [
    {"device_id": 0, "device_expert": [0, 2, 1]}, {"device_id": 1, "device_expert": [3, 0, 2]}]},
  {"layer_id": 1, "device_count": 2, "device_list": [
    {"device_id": 0, "device_expert": [3, 1, 0]}, {"device_id": 1, "device_expert": [2, 1, 3]}]}]})";
  const eplb::mapping_file a = read_ok(ascend, eplb::mapping_format::ascend);
  CHECK(a.place.physical_to_logical == k_place.physical_to_logical);
  CHECK(a.num_ranks == 2);
  CHECK(a.place.num_experts == 4);

  // vllm-offline-eplb.md section 5.
  const std::string vllm =
      R"({"record_type": "eplb_initial_mapping", "version": 1, "num_redundant_experts": 1, )"
      R"("num_slots": 4, "initial_global_assignments": {"0": [0, 2, 0, 1], "1": [1, 2, 1, 0]}})"
      "\n";
  const eplb::mapping_file v = read_ok(vllm, eplb::mapping_format::vllm);
  CHECK(v.place.physical_to_logical == std::vector<std::int32_t>{0, 2, 0, 1, 1, 2, 1, 0});
  CHECK(v.place.num_experts == 3);
}

TEST_CASE("vLLM mappings are checked by the loader's own rules and messages", "[mapping_io]") {
  const std::string vllm =
      R"({"record_type": "eplb_initial_mapping", "version": 1, "num_redundant_experts": 1, )"
      R"("num_slots": 4, "initial_global_assignments": {"0": [0, 2, 0, 1], "1": [1, 2, 1, 0]}})";
  eplb::mapping_read_options o;
  o.num_ranks = 3;
  eplb::loader::expected_topology expect;
  expect.num_ranks = 3;
  const std::string from_loader = eplb::loader::parse_mapping(vllm, expect, "m").error.message;
  REQUIRE_FALSE(from_loader.empty());
  CHECK(read_error(vllm, eplb::mapping_format::vllm, o) == from_loader);
  // A missing expert: layer 0 without expert 1 (the row starts at byte column 135).
  std::string missing = vllm;
  missing.replace(missing.find("[0, 2, 0, 1]"), 12, "[0, 2, 0, 2]");
  CHECK(read_error(missing, eplb::mapping_format::vllm) ==
        "m:1:135: layer 0: logical expert 1 has no slot");
}

TEST_CASE("SGLang reader refuses broken files with line, column and field", "[mapping_io]") {
  const auto f = eplb::mapping_format::sglang;
  CHECK(read_error("{\"physical_to_logical_map\": [[0, 1],\n [1, \"x\"]]}", f) ==
        "m:2:6: physical_to_logical_map[1][1]: expected an integer, got a string");
  CHECK(read_error("{\"physical_to_logical_map\": [[0, 1],\n [1]]}", f) ==
        "m:2:2: physical_to_logical_map[1]: has 1 slots, expected 2 like the first row");
  CHECK(contains(read_error(R"({"physical_to_logical_map": [[0, 1]], "x": 1})", f),
                 "m:1:44: x: unexpected key"));
  CHECK(contains(read_error(R"({"logical_count": [[1, 2]]})", f), "not a mapping"));
  CHECK(read_error(R"({"physical_to_logical_map": [[0, 1, 1]]})", f,
                   eplb::mapping_read_options{0, 3, 0, -1, std::nullopt, 0}) ==
        "m:1:30: physical_to_logical_map[0]: logical expert 2 has no slot");
  CHECK(read_error(R"({"physical_to_logical_map": [[0, 1, 3]]})", f,
                   eplb::mapping_read_options{0, 3, 0, -1, std::nullopt, 0}) ==
        "m:1:37: physical_to_logical_map[0][2]: expert 3 out of range [0, 3)");
  CHECK(read_error(R"({"physical_to_logical_map": [[0, 1, 2]]})", f,
                   eplb::mapping_read_options{0, 0, 2, -1, std::nullopt, 0}) ==
        "m:1:29: mapping does not fit EP size 2: num_slots=3 is not divisible by it");
  CHECK(contains(read_error(R"({"physical_to_logical_map": [[0, 1]]})", f,
                            eplb::mapping_read_options{0, 0, 0, 0, std::nullopt, 3}),
                 "has 1 rows, expected one per decoder layer (3)"));
  CHECK(read_error("{\"physical_to_logical_map\": [[0, 1]],}", f) ==
        "m:1:38: invalid JSON: unexpected character '}', expected a string key");
}

TEST_CASE("TensorRT-LLM YAML reader: PyYAML's shape, wrapped lists, strict otherwise",
          "[mapping_io]") {
  const auto f = eplb::mapping_format::trtllm;
  // yaml.dump with its default width wraps long flow lists onto more indented lines; comments,
  // a document start and CRLF line ends are fine.
  const std::string wrapped =
      "---\r\n# planned by eplb-gen\r\ninitial_global_assignments:\r\n"
      "  3: [0, 2, 1,\r\n    3, 0, 2]\r\n  4: [3, 1, 0, 2, 1, 3]  # hot layer\r\n"
      "num_slots: 6\r\nlayer_updates_per_iter: 2\r\n";
  const eplb::mapping_file m = read_ok(wrapped, f);
  CHECK(m.place.physical_to_logical == k_place.physical_to_logical);
  CHECK(m.layer_updates_per_iter == 2);

  const std::string head = "initial_global_assignments:\n";
  CHECK(read_error(head + "  3: [0, 1]\n\t4: [1, 0]\nnum_slots: 2\n", f) ==
        "m:3:1: tab in indentation (YAML forbids it)");
  CHECK(read_error(head + "  3: [0, 1]\n", f) == "m: num_slots: missing");
  CHECK(read_error(head + "  3: [0, 1, 1]\nnum_slots: 2\n", f) ==
        "m:2:6: initial_global_assignments[3]: assignment length (3) does not match num_slots "
        "(2)");
  CHECK(read_error(head + "  3: [0, 1.5]\nnum_slots: 2\n", f) ==
        "m:2:10: initial_global_assignments[3][1]: expected an integer, got a different scalar");
  CHECK(read_error(head + "  3: [0, 1]\nnum_slot: 2\n", f) ==
        "m:3:1: num_slot: unknown key; expected initial_global_assignments, "
        "layer_updates_per_iter or num_slots");
  CHECK(read_error(head + "  3: [0, 1]\n  3: [1, 0]\nnum_slots: 2\n", f) ==
        "m:3:3: initial_global_assignments[3]: layer id repeated (first on line 2)");
  CHECK(read_error(head + "  3: [0, 1\nnum_slots: 2\n", f) ==
        "m:3:1: initial_global_assignments[3]: unterminated list: a continuation line must be "
        "indented more");
  CHECK(read_error(head + "  3: [0, 1]\n   4: [1, 0]\nnum_slots: 2\n", f) ==
        "m:3:4: initial_global_assignments: indentation 3 differs from the first layer's 2");
  CHECK(read_error(head + "  3:\n  - 0\nnum_slots: 2\n", f) ==
        "m:2:5: initial_global_assignments[3]: expected a space and a list after ':'");
  CHECK(read_error(head + "  3: [0, 1] x\nnum_slots: 2\n", f) ==
        "m:2:13: initial_global_assignments[3]: unexpected 'x' after the value");
  CHECK(read_error(head + "num_slots: 2\n", f) ==
        "m:1:1: initial_global_assignments: has no layers");
  CHECK(read_error(head + "  3: [0, 1]\nnum_slots: 2\nnum_slots: 2\n", f) ==
        "m:4:1: num_slots: key repeated (first on line 3)");
  // Topology checks name the num_slots value.
  CHECK(read_error(head + "  3: [0, 1, 2]\nnum_slots: 3\n", f,
                   eplb::mapping_read_options{0, 0, 2, -1, std::nullopt, 0}) ==
        "m:3:12: mapping does not fit EP size 2: num_slots=3 is not divisible by it");
  CHECK(read_error(head + "  3: [0, 1, 2, 0]\nnum_slots: 4\n", f,
                   eplb::mapping_read_options{0, 4, 0, -1, std::nullopt, 0}) ==
        "m:2:6: initial_global_assignments[3]: logical expert 3 has no slot");
}

TEST_CASE("vllm-ascend reader: devices by position, no expert twice on a device", "[mapping_io]") {
  const auto f = eplb::mapping_format::ascend;
  const std::string one_layer_head =
      "{\"moe_layer_count\": 1, \"layer_list\": [\n"
      " {\"device_count\": 2, \"device_list\": [\n";
  CHECK(read_error(
            one_layer_head + "  {\"device_expert\": [0, 1, 0]}, {\"device_expert\": [2, 1, 3]}]}]}",
            f) ==
        "m:3:28: layer_list[0].device_list[0].device_expert[2]: logical expert 0 is already in "
        "local slot 0 of this device; vllm-ascend cannot load a map that repeats an expert on a "
        "device");
  CHECK(read_error(one_layer_head +
                       "  {\"device_id\": 1, \"device_expert\": [0, 1]}, {\"device_expert\": "
                       "[2, 1]}]}]}",
                   f) ==
        "m:3:17: layer_list[0].device_list[0].device_id: is 1 at position 0; vllm-ascend reads "
        "devices by position");
  CHECK(read_error(one_layer_head + "  {\"device_expert\": [0, 1]}, {\"device_expert\": [2]}]}]}",
                   f) ==
        "m:3:48: layer_list[0].device_list[1].device_expert: has 1 experts, expected 2 like the "
        "first device (and at least 1)");
  CHECK(read_error(one_layer_head + "  {\"device_expert\": [0, 1]}]}]}", f) ==
        "m:2:37: layer_list[0].device_list: has 1 devices but device_count is 2");
  // Checked against EP 4, then E 4: the device count, then an expert out of range by device.
  const std::string good =
      one_layer_head + "  {\"device_expert\": [0, 1]}, {\"device_expert\": [2, 5]}]}]}";
  CHECK(read_error(good, f, eplb::mapping_read_options{0, 0, 4, -1, std::nullopt, 0}) ==
        "m:2:19: layer_list[0].device_count: mapping does not fit EP size 4: it has 2 devices");
  CHECK(read_error(good, f, eplb::mapping_read_options{0, 4, 0, -1, std::nullopt, 0}) ==
        "m:3:52: layer_list[0].device_list[1].device_expert[1]: expert 5 out of range [0, 4)");
  CHECK(read_error("{\"moe_layer_count\": 2, \"layer_list\": []}", f) ==
        "m:1:38: layer_list: has 0 layers but moe_layer_count is 2");
}

TEST_CASE("plain JSON reader: derived tables must agree with physical_to_logical", "[mapping_io]") {
  const auto f = eplb::mapping_format::json;
  const std::string text = render(f, k_place, k_topo);
  std::string edited = text;
  // replica_count of layer 0 is [2, 1, 2, 1]; claim 3 replicas of expert 0.
  const std::size_t at = edited.find("\"replica_count\": [\n    [2, 1, 2, 1]");
  REQUIRE(at != std::string::npos);
  edited.replace(at + 24, 1, "3");
  const std::string e = read_error(edited, f);
  CHECK(contains(e, "replica_count[0][0]: is 3 but physical_to_logical gives 2"));
  std::string wrong_format = text;
  wrong_format.replace(wrong_format.find("eplb-gen-placement"), 4, "xxxx");
  CHECK(read_error(wrong_format, f) == "m:2:13: format: expected \"eplb-gen-placement\"");
  CHECK(contains(read_error(text, f, eplb::mapping_read_options{0, 0, 3, -1, std::nullopt, 0}),
                 "num_ranks: mapping does not fit EP size 3: it was planned for 2"));
  CHECK(read_ok(text, f).policy == "deepseek");
}

TEST_CASE("detection by content refuses stats and unknown files", "[mapping_io]") {
  auto stats = eplb::detect_mapping_format_text(R"({"logical_count": [[1, 2]]})", "s");
  REQUIRE_FALSE(stats.ok());
  CHECK(contains(stats.message(), "SGLang stats file, not a mapping"));
  auto matrix = eplb::detect_mapping_format_text("\n [[1, 2]]", "s");
  REQUIRE_FALSE(matrix.ok());
  CHECK(matrix.message() == "s:2:2: a JSON array is a load matrix (stats), not a mapping");
  auto other = eplb::detect_mapping_format_text("model: x\n", "s");
  REQUIRE_FALSE(other.ok());
  CHECK(contains(other.message(), "cannot tell the mapping format"));
  auto empty = eplb::detect_mapping_format_text(" \n", "s");
  REQUIRE_FALSE(empty.ok());
  CHECK(empty.message() == "s: file is empty");
  // A vLLM mapping after other JSONL records is still vLLM.
  auto jsonl = eplb::detect_mapping_format_text(
      "{\"record_type\": \"note\"}\n{\"record_type\": \"eplb_initial_mapping\"}\n", "s");
  REQUIRE(jsonl.ok());
  CHECK(*jsonl == eplb::mapping_format::vllm);
}

TEST_CASE("read_mapping reads files and reports unreadable ones", "[mapping_io]") {
  auto missing = eplb::read_mapping("/nonexistent/dir/m.jsonl", std::nullopt, {});
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.code() == eplb::errc::io_error);
  CHECK(contains(missing.message(), "/nonexistent/dir/m.jsonl"));
  const std::string dir = EPLB_TEST_DATA_DIR;
  auto stats = eplb::read_mapping(dir + "/formats/vllm_example.jsonl", std::nullopt, {});
  REQUIRE_FALSE(stats.ok());
  CHECK(contains(stats.message(), "does not contain an eplb_initial_mapping record"));
}

TEST_CASE("mapping_topology takes the file's EP size unless one is given", "[mapping_io]") {
  eplb::mapping_file m;
  m.place = k_place;
  m.num_ranks = 2;
  CHECK(eplb::mapping_topology(m, 0).num_ranks == 2);
  CHECK(eplb::mapping_topology(m, 3).num_ranks == 3);
  const eplb::topology t = eplb::mapping_topology(m, 0);
  CHECK(t.num_layers == 2);
  CHECK(t.num_experts == 4);
  CHECK(t.num_slots == 6);
}
