// The memory of one expert from a Hugging Face config.json: the published configs of Qwen2-MoE,
// Qwen3-MoE and DeepSeek-V3 (data/configs), tiny hand-checked ones and configs that lack a field.

#include <catch2/catch.hpp>
#include <string>

#include "eplb/model_config.hpp"

using namespace eplb;

namespace {

const std::string kConfigs = std::string(EPLB_SOURCE_DIR) + "/data/configs/";
const std::string kTestConfigs = std::string(EPLB_TEST_DATA_DIR) + "/configs/";

expert_memory read_ok(const std::string& path, std::optional<double> weight_bytes = std::nullopt) {
  auto m = read_model_config(path, weight_bytes);
  INFO((m.ok() ? std::string() : m.message()));
  REQUIRE(m.ok());
  return *m;
}

}  // namespace

TEST_CASE("model config: the published MoE configs give their layers and expert sizes",
          "[model_config]") {
  const expert_memory q2 = read_ok(kConfigs + "qwen2_57b_a14b.json");
  CHECK(q2.family == "qwen");
  CHECK(q2.moe_layers == 28);  // no mlp_only_layers in this config: every layer is MoE
  CHECK(q2.num_experts == 64);
  CHECK(q2.expert_bytes == 3.0 * 3584 * 2560 * 2);
  CHECK(q2.weight_type == "bfloat16");

  const expert_memory q30 = read_ok(kConfigs + "qwen3_30b_a3b.json");
  CHECK(q30.moe_layers == 48);
  CHECK(q30.num_experts == 128);
  CHECK(q30.expert_bytes == 3.0 * 2048 * 768 * 2);

  const expert_memory q235 = read_ok(kConfigs + "qwen3_235b_a22b.json");
  CHECK(q235.moe_layers == 94);
  CHECK(q235.num_experts == 128);
  CHECK(q235.expert_bytes == 37748736.0);  // 36 MiB
  // EP 8 with 64 redundant slots: 8 more experts per rank in each of 94 layers.
  CHECK(extra_bytes_per_gpu(q235, 64, 8) == 8.0 * 37748736 * 94);
  CHECK(format_bytes(extra_bytes_per_gpu(q235, 64, 8)) == "26.44 GiB");

  const expert_memory ds = read_ok(kConfigs + "deepseek_v3.json");
  CHECK(ds.family == "deepseek");
  CHECK(ds.num_hidden_layers == 61);
  CHECK(ds.moe_layers == 58);  // first_k_dense_replace 3
  CHECK(ds.num_experts == 256);
  CHECK(ds.bytes_per_weight == 1.0);  // quantization_config fp8, whatever torch_dtype says
  CHECK(ds.expert_bytes == 3.0 * 7168 * 2048);
}

TEST_CASE("model config: tiny configs, checked by hand", "[model_config]") {
  // 6 layers, mlp_only_layers [0]: layers 1..5 are MoE. One expert: 3 x 16 x 8 weights of 4 bytes.
  const expert_memory q = read_ok(kTestConfigs + "tiny_qwen.json");
  CHECK(q.moe_layers == 5);
  CHECK(q.expert_bytes == 1536.0);
  // EP 2, R 4: every rank holds (8 + 4) / 2 = 6 slots per layer instead of 4: 2 x 1536 x 5.
  CHECK(extra_bytes_per_gpu(q, 4, 2) == 15360.0);
  CHECK(extra_bytes_per_gpu(q, 0, 2) == 0.0);
  CHECK(format_bytes(15360.0) == "15.00 KiB");
  CHECK(format_bytes(1000.0) == "1000 B");

  // 5 layers, first_k_dense_replace 1, moe_layer_freq 2: layers 2 and 4. fp8: 3 x 32 x 4 bytes.
  const expert_memory d = read_ok(kTestConfigs + "tiny_deepseek.json");
  CHECK(d.moe_layers == 2);
  CHECK(d.expert_bytes == 384.0);
  CHECK(extra_bytes_per_gpu(d, 8, 4) == 2.0 * 384 * 2);

  // --weight-bytes overrides the dtype and the quantization.
  const expert_memory w = read_ok(kTestConfigs + "tiny_deepseek.json", 0.5);
  CHECK(w.expert_bytes == 192.0);
  CHECK(w.weight_type == "--weight-bytes");
}

TEST_CASE("model config: a config without a needed field is a clear error", "[model_config]") {
  auto no_inter = read_model_config(kTestConfigs + "no_moe_intermediate.json", std::nullopt);
  REQUIRE_FALSE(no_inter.ok());
  CHECK(no_inter.code() == errc::missing_field);
  CHECK(no_inter.message().find("no_moe_intermediate.json") != std::string::npos);
  CHECK(no_inter.message().find("moe_intermediate_size") != std::string::npos);

  auto no_first = read_model_config(kTestConfigs + "deepseek_no_first_k.json", std::nullopt);
  REQUIRE_FALSE(no_first.ok());
  CHECK(no_first.code() == errc::missing_field);
  CHECK(no_first.message().find("first_k_dense_replace") != std::string::npos);

  auto awq = read_model_config(kTestConfigs + "awq.json", std::nullopt);
  REQUIRE_FALSE(awq.ok());
  CHECK(awq.code() == errc::invalid_value);
  CHECK(awq.message().find("--weight-bytes") != std::string::npos);
  CHECK(read_model_config(kTestConfigs + "awq.json", 0.5).ok());

  auto parse = [](const std::string& json) { return parse_model_config(json, "c.json", {}); };
  CHECK(parse("{\"num_hidden_layers\": 2, \"hidden_size\": 4, \"moe_intermediate_size\": 2, "
              "\"torch_dtype\": \"bfloat16\"}")
            .message()
            .find("num_experts") != std::string::npos);
  CHECK(parse("{\"num_hidden_layers\": 2, \"hidden_size\": 4, \"moe_intermediate_size\": 2, "
              "\"num_experts\": 4}")
            .message()
            .find("torch_dtype") != std::string::npos);
  CHECK(parse("{\"num_hidden_layers\": 2, \"hidden_size\": 4, \"moe_intermediate_size\": 2, "
              "\"num_experts\": 4, \"torch_dtype\": \"int3\"}")
            .code() == errc::invalid_value);
  CHECK(parse("{\"num_hidden_layers\": 2, \"hidden_size\": \"4\", \"moe_intermediate_size\": 2, "
              "\"num_experts\": 4, \"torch_dtype\": \"bfloat16\"}")
            .code() == errc::wrong_type);
  CHECK(parse("{\"num_hidden_layers\": 2, \"hidden_size\": 4, \"moe_intermediate_size\": 2, "
              "\"num_experts\": 4, \"mlp_only_layers\": [0, 1], \"dtype\": \"bfloat16\"}")
            .message()
            .find("no decoder layer has routed experts") != std::string::npos);
  CHECK(parse("{\"num_hidden_layers\": 2, \"hidden_size\": 4, \"moe_intermediate_size\": 2, "
              "\"num_experts\": 4, \"mlp_only_layers\": [7], \"dtype\": \"bfloat16\"}")
            .message()
            .find("mlp_only_layers[0]") != std::string::npos);
  CHECK(parse("not json").code() == errc::invalid_json);
  CHECK(read_model_config(kTestConfigs + "absent.json", std::nullopt).code() == errc::io_error);
  // transformers' newer `dtype` key is read like torch_dtype.
  auto dtype = parse(
      "{\"num_hidden_layers\": 2, \"hidden_size\": 4, \"moe_intermediate_size\": 2, "
      "\"num_experts\": 4, \"decoder_sparse_step\": 2, \"dtype\": \"float32\"}");
  REQUIRE(dtype.ok());
  CHECK(dtype->moe_layers == 1);  // (i + 1) % 2 == 0: layer 1
  CHECK(dtype->expert_bytes == 3.0 * 4 * 2 * 4);
}
