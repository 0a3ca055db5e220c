// Importers of the other engines' stats: every fixture is the same load as the vLLM example of
// vllm-offline-eplb.md section 5 (aggregated by hand: [[138, 22, 45], [25, 110, 50]]) or the
// SGLang/LMDeploy example of other-engines.md, and each error names file, line and field.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "eplb/import.hpp"

namespace fs = std::filesystem;

namespace {

const std::string k_dir = std::string(EPLB_TEST_DATA_DIR) + "/formats";

// The vLLM example's aggregated logical load (vllm-offline-eplb.md section 5).
eplb::load_matrix vllm_example_load() {
  eplb::load_matrix m(2, 3);
  m << 138, 22, 45, 25, 110, 50;
  return m;
}

// The SGLang / LMDeploy example of other-engines.md without its dense layer 0.
eplb::load_matrix engine_example_load() {
  eplb::load_matrix m(2, 4);
  m << 120, 30, 55, 15, 10, 90, 40, 60;
  return m;
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// A scratch directory removed at the end of the test.
struct temp_dir {
  fs::path path;
  explicit temp_dir(const std::string& name)
      : path(fs::temp_directory_path() /
             ("eplb_test_" + std::to_string(::getpid()) + "_" + name)) {
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// A 1-D tensor for the safetensors generator: name, dtype and its raw little-endian bytes.
struct tensor {
  std::string name;
  std::string dtype;
  std::string data;
  std::size_t numel;
};

template <class T>
tensor make_tensor(const std::string& name, const std::string& dtype, std::vector<T> values) {
  std::string data;
  for (T v : values) {
    char b[sizeof(T)];
    std::memcpy(b, &v, sizeof(T));  // the test hosts are little-endian, as the format is
    data.append(b, sizeof(T));
  }
  return tensor{name, dtype, data, values.size()};
}

// Writes the container like the reference writer: compact JSON header in the given order, padded
// with spaces to a multiple of 8.
std::string safetensors_bytes(const std::vector<tensor>& tensors) {
  std::string header = "{";
  std::string data;
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const auto& t = tensors[i];
    if (i > 0) header += ",";
    const std::size_t begin = data.size();
    data += t.data;
    header += "\"" + t.name + "\":{\"dtype\":\"" + t.dtype + "\",\"shape\":[" +
              std::to_string(t.numel) + "],\"data_offsets\":[" + std::to_string(begin) + "," +
              std::to_string(data.size()) + "]}";
  }
  header += "}";
  while (header.size() % 8 != 0) header += ' ';
  std::string out;
  std::uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  return out + header + data;
}

}  // namespace

TEST_CASE("the spec's safetensors example is 104 bytes and parses to [7, 0, 2, 5]", "[import]") {
  // Spelled out from other-engines.md section 2.
  std::string expected("\x40\0\0\0\0\0\0\0", 8);
  expected += "{\"0_3\":{\"dtype\":\"I64\",\"shape\":[4],\"data_offsets\":[0,32]}}";
  expected += std::string(7, ' ');
  for (std::int64_t v : {7, 0, 2, 5}) {
    for (int i = 0; i < 8; ++i) expected.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  }
  REQUIRE(expected.size() == 104);
  CHECK(read_bytes(k_dir + "/safetensors_0_3.safetensors") == expected);
  CHECK(safetensors_bytes({make_tensor<std::int64_t>("0_3", "I64", {7, 0, 2, 5})}) == expected);

  auto file = eplb::parse_safetensors(expected, "example");
  REQUIRE(file.ok());
  CHECK(file->data_start == 72);
  REQUIRE(file->entries.size() == 1);
  const auto& e = file->entries[0];
  CHECK(e.name == "0_3");
  CHECK(e.dtype == "I64");
  CHECK(e.shape == std::vector<std::uint64_t>{4});
  CHECK(e.begin == 0);
  CHECK(e.end == 32);
  auto values = eplb::safetensors_to_int64(*file, e);
  REQUIRE(values.ok());
  CHECK(*values == std::vector<std::int64_t>{7, 0, 2, 5});
}

TEST_CASE("safetensors dtypes convert exactly; bad containers are refused", "[import]") {
  const std::string bytes = safetensors_bytes(
      {make_tensor<std::int32_t>("a", "I32", {3, -4}), make_tensor<std::int16_t>("b", "I16", {-2}),
       make_tensor<std::uint8_t>("c", "U8", {255}), make_tensor<float>("d", "F32", {6.0f, 1e6f}),
       make_tensor<float>("e", "F32", {2.5f})});
  auto file = eplb::parse_safetensors(bytes, "dtypes");
  REQUIRE(file.ok());
  REQUIRE(file->entries.size() == 5);
  CHECK(*eplb::safetensors_to_int64(*file, file->entries[0]) == std::vector<std::int64_t>{3, -4});
  CHECK(*eplb::safetensors_to_int64(*file, file->entries[1]) == std::vector<std::int64_t>{-2});
  CHECK(*eplb::safetensors_to_int64(*file, file->entries[2]) == std::vector<std::int64_t>{255});
  CHECK(*eplb::safetensors_to_int64(*file, file->entries[3]) ==
        std::vector<std::int64_t>{6, 1000000});
  auto frac = eplb::safetensors_to_int64(*file, file->entries[4]);
  REQUIRE_FALSE(frac.ok());
  CHECK(frac.code() == eplb::errc::invalid_value);
  CHECK(contains(frac.message(), "dtypes: e[0]"));

  SECTION("__metadata__ is skipped") {
    std::string header =
        "{\"__metadata__\":{\"format\":\"pt\"},\"x\":{\"dtype\":\"I64\",\"shape\":[1],"
        "\"data_offsets\":[0,8]}}";
    std::string b;
    for (int i = 0; i < 8; ++i) b.push_back(static_cast<char>((header.size() >> (8 * i)) & 0xff));
    b += header + std::string("\x09\0\0\0\0\0\0\0", 8);
    auto f = eplb::parse_safetensors(b, "meta");
    REQUIRE(f.ok());
    REQUIRE(f->entries.size() == 1);
    CHECK(f->entries[0].name == "x");
    CHECK(*eplb::safetensors_to_int64(*f, f->entries[0]) == std::vector<std::int64_t>{9});
  }
  SECTION("header length above the 100,000,000 cap") {
    std::string b("\x01\xe1\xf5\x05\0\0\0\0", 8);  // 100,000,001
    b += std::string(16, ' ');
    auto f = eplb::parse_safetensors(b, "huge");
    REQUIRE_FALSE(f.ok());
    CHECK(f.code() == eplb::errc::limit_exceeded);
  }
  SECTION("header running past the end of the file") {
    std::string b = bytes.substr(0, 20);
    auto f = eplb::parse_safetensors(b, "short");
    REQUIRE_FALSE(f.ok());
    CHECK(f.code() == eplb::errc::invalid_value);
    CHECK(contains(f.message(), "short"));
  }
  SECTION("data offsets past the data section") {
    std::string b = bytes.substr(0, bytes.size() - 4);  // cut the last F32
    auto f = eplb::parse_safetensors(b, "cut");
    REQUIRE_FALSE(f.ok());
    CHECK(f.code() == eplb::errc::out_of_range);
    CHECK(contains(f.message(), "e.data_offsets"));
  }
  SECTION("offsets that do not match shape x dtype size") {
    std::string header = "{\"x\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[0,8]}}";
    std::string b;
    for (int i = 0; i < 8; ++i) b.push_back(static_cast<char>((header.size() >> (8 * i)) & 0xff));
    b += header + std::string(8, '\0');
    auto f = eplb::parse_safetensors(b, "mismatch");
    REQUIRE_FALSE(f.ok());
    CHECK(f.code() == eplb::errc::shape_mismatch);
  }
  SECTION("fewer than 8 bytes") {
    auto f = eplb::parse_safetensors("abc", "tiny");
    REQUIRE_FALSE(f.ok());
  }
}

TEST_CASE("TensorRT-LLM fixture sums ranks and iterations to the vLLM example", "[import]") {
  eplb::import_options opts;
  auto got = eplb::import_trtllm(k_dir + "/trtllm", opts);
  REQUIRE(got.ok());
  CHECK(got->load == vllm_example_load());
  CHECK(got->info.format == eplb::stats_format::trtllm_dir);
  CHECK(got->info.layer_ids == std::vector<int>{3, 4});
  CHECK(got->info.num_layers == 2);
  CHECK(got->info.num_experts == 3);
  CHECK(got->info.num_ranks == 2);  // rank0_raw and cooccurrence_rank0 are not rank files
  CHECK(got->info.num_experts_per_token == 2);
  CHECK(got->info.steps_total == 2);
  CHECK(got->info.steps_used == 2);
  CHECK(got->info.first_step == 0);
  CHECK(got->info.last_step == 1);
  REQUIRE(got->info.files.size() == 3);
  CHECK(fs::path(got->info.files[1]).filename() == "rank0.safetensors");
  CHECK(fs::path(got->info.files[2]).filename() == "rank1.safetensors");

  // meta_info.json names the directory too, and detection agrees.
  auto via_meta = eplb::import_stats(k_dir + "/trtllm/meta_info.json", opts);
  REQUIRE(via_meta.ok());
  CHECK(via_meta->load == vllm_example_load());

  // Iteration 1 alone (the vLLM step 2260 record).
  opts.steps.first = 1;
  auto one = eplb::import_trtllm(k_dir + "/trtllm", opts);
  REQUIRE(one.ok());
  eplb::load_matrix expected(2, 3);
  expected << 68, 12, 20, 15, 50, 30;
  CHECK(one->load == expected);
  CHECK(one->info.steps_used == 1);
  CHECK(one->info.first_step == 1);

  opts.steps.first = 5;
  auto none = eplb::import_trtllm(k_dir + "/trtllm", opts);
  REQUIRE_FALSE(none.ok());
  CHECK(none.code() == eplb::errc::no_records);  // about the data: exit 1, not a usage error
}

TEST_CASE("TensorRT-LLM: the reference loader's checks", "[import]") {
  temp_dir dir("trtllm_checks");
  write_file(dir.file("meta_info.json"), R"({"num_experts": 2, "num_experts_per_token": 1})");
  const eplb::import_options opts;

  SECTION("generated files with many ranks sort numerically and sum") {
    for (int r = 0; r < 11; ++r) {
      write_file(dir.file("rank" + std::to_string(r) + ".safetensors"),
                 safetensors_bytes({make_tensor<std::int64_t>("7_10", "I64", {r, 1}),
                                    make_tensor<std::int64_t>("8_10", "I64", {0, 2})}));
    }
    auto got = eplb::import_trtllm(dir.path.string(), opts);
    REQUIRE(got.ok());
    CHECK(got->info.num_ranks == 11);
    CHECK(fs::path(got->info.files[3]).filename() == "rank2.safetensors");
    CHECK(fs::path(got->info.files.back()).filename() == "rank10.safetensors");
    CHECK(got->load(0, 0) == 55);  // 0 + 1 + ... + 10
    CHECK(got->load(0, 1) == 33);  // 11 ranks x (1 + 2)
    CHECK(got->info.layer_ids == std::vector<int>{10});
    CHECK(got->info.first_step == 7);
    CHECK(got->info.last_step == 8);
  }
  SECTION("non-contiguous iterations") {
    write_file(dir.file("rank0.safetensors"),
               safetensors_bytes({make_tensor<std::int64_t>("0_3", "I64", {1, 1}),
                                  make_tensor<std::int64_t>("2_3", "I64", {1, 1})}));
    auto got = eplb::import_trtllm(dir.path.string(), opts);
    REQUIRE_FALSE(got.ok());
    CHECK(contains(got.message(), "not contiguous"));
    CHECK(contains(got.message(), "1 is missing"));
  }
  SECTION("an (iteration, layer) pair missing") {
    write_file(dir.file("rank0.safetensors"),
               safetensors_bytes({make_tensor<std::int64_t>("0_3", "I64", {1, 1}),
                                  make_tensor<std::int64_t>("0_4", "I64", {1, 1}),
                                  make_tensor<std::int64_t>("1_3", "I64", {1, 1})}));
    auto got = eplb::import_trtllm(dir.path.string(), opts);
    REQUIRE_FALSE(got.ok());
    CHECK(got.code() == eplb::errc::missing_field);
    CHECK(contains(got.message(), "1_4"));
  }
  SECTION("a tensor whose length is not num_experts") {
    write_file(dir.file("rank0.safetensors"),
               safetensors_bytes({make_tensor<std::int64_t>("0_3", "I64", {1, 1, 1})}));
    auto got = eplb::import_trtllm(dir.path.string(), opts);
    REQUIRE_FALSE(got.ok());
    CHECK(got.code() == eplb::errc::shape_mismatch);
    CHECK(contains(got.message(), "rank0.safetensors"));
    CHECK(contains(got.message(), "0_3"));
  }
  SECTION("a layer id beyond the decoder-layer limit (it would become that many output rows)") {
    write_file(dir.file("rank0.safetensors"),
               safetensors_bytes({make_tensor<std::int64_t>("0_2000000000", "I64", {1, 1})}));
    auto got = eplb::import_trtllm(dir.path.string(), opts);
    REQUIRE_FALSE(got.ok());
    CHECK(got.code() == eplb::errc::limit_exceeded);
    CHECK(contains(got.message(),
                   "rank0.safetensors: 0_2000000000: layer id 2000000000 is beyond "
                   "the limit of 8192 decoder layers (docs/limits.md)"));
  }
  SECTION("a key that is not {iter}_{layer}") {
    write_file(dir.file("rank0.safetensors"),
               safetensors_bytes({make_tensor<std::int64_t>("0-3", "I64", {1, 1})}));
    auto got = eplb::import_trtllm(dir.path.string(), opts);
    REQUIRE_FALSE(got.ok());
    CHECK(contains(got.message(), "0-3"));
  }
  SECTION("a negative count") {
    write_file(dir.file("rank0.safetensors"),
               safetensors_bytes({make_tensor<std::int32_t>("0_3", "I32", {1, -1})}));
    auto got = eplb::import_trtllm(dir.path.string(), opts);
    REQUIRE_FALSE(got.ok());
    CHECK(got.code() == eplb::errc::invalid_value);
    CHECK(contains(got.message(), "0_3[1]"));
  }
  SECTION("F32 counts must be integral") {
    write_file(dir.file("rank0.safetensors"),
               safetensors_bytes({make_tensor<float>("0_3", "F32", {4.0f, 0.5f})}));
    auto got = eplb::import_trtllm(dir.path.string(), opts);
    REQUIRE_FALSE(got.ok());
    CHECK(contains(got.message(), "0_3[1]"));
  }
  SECTION("no rank files") {
    auto got = eplb::import_trtllm(dir.path.string(), opts);
    REQUIRE_FALSE(got.ok());
    CHECK(got.code() == eplb::errc::no_records);
  }
  SECTION("meta_info.json without num_experts") {
    write_file(dir.file("meta_info.json"), R"({"num_experts_per_token": 1})");
    auto got = eplb::import_trtllm(dir.path.string(), opts);
    REQUIRE_FALSE(got.ok());
    CHECK(got.code() == eplb::errc::missing_field);
    CHECK(contains(got.message(), "meta_info.json: num_experts"));
  }
}

TEST_CASE("SGLang logical_count: 2-D spec example and 3-D recorder dump", "[import]") {
  eplb::import_options opts;
  opts.skip_layers = 1;
  auto two = eplb::import_sglang(k_dir + "/sglang_logical_count_2d.json", opts);
  REQUIRE(two.ok());
  CHECK(two->load == engine_example_load());
  CHECK(two->info.layer_ids == std::vector<int>{1, 2});
  CHECK(two->info.steps_total == 1);
  CHECK(two->info.leading_zero_rows == 0);
  auto with_dense = eplb::import_sglang(k_dir + "/sglang_logical_count_2d.json", {});
  REQUIRE(with_dense.ok());
  CHECK(with_dense->load.rows() == 3);
  CHECK(with_dense->info.leading_zero_rows == 1);  // the dense decoder layer 0

  eplb::import_options all;
  auto three = eplb::import_sglang(k_dir + "/sglang_logical_count_3d.json", all);
  REQUIRE(three.ok());
  CHECK(three->load == vllm_example_load());
  CHECK(three->info.steps_total == 3);
  CHECK(three->info.steps_used == 3);
  CHECK(three->info.layer_ids == std::vector<int>{0, 1});

  eplb::import_options first;
  first.steps.last = 0;
  auto step0 = eplb::import_sglang(k_dir + "/sglang_logical_count_3d.json", first);
  REQUIRE(step0.ok());
  eplb::load_matrix expected(2, 3);
  expected << 70, 10, 25, 10, 60, 20;
  CHECK(step0->load == expected);
  CHECK(step0->info.steps_used == 1);
  CHECK(step0->info.last_step == 0);

  first.steps.first = 3;
  first.steps.last.reset();
  auto none = eplb::import_sglang(k_dir + "/sglang_logical_count_3d.json", first);
  REQUIRE_FALSE(none.ok());
  CHECK(none.code() == eplb::errc::no_records);
}

TEST_CASE("SGLang errors name file, line and field", "[import]") {
  const eplb::import_options opts;
  auto frac = eplb::import_sglang_text("{\"logical_count\": [[1, 2],\n [3, 4.5]]}", "f.json", opts);
  REQUIRE_FALSE(frac.ok());
  CHECK(frac.code() == eplb::errc::invalid_value);
  CHECK(contains(frac.message(), "f.json:2: logical_count[1][1]:"));
  CHECK(contains(frac.message(), "4.5"));

  auto neg = eplb::import_sglang_text("{\"logical_count\": [[1, -2]]}", "n.json", opts);
  REQUIRE_FALSE(neg.ok());
  CHECK(neg.code() == eplb::errc::invalid_value);
  CHECK(contains(neg.message(), "n.json:1: logical_count[0][1]:"));

  auto negf = eplb::import_sglang_text("{\"logical_count\": [[1, -2.0]]}", "nf.json", opts);
  REQUIRE_FALSE(negf.ok());
  CHECK(contains(negf.message(), "logical_count[0][1]"));

  auto ragged = eplb::import_sglang_text("{\"logical_count\": [[1, 2], [3]]}", "r.json", opts);
  REQUIRE_FALSE(ragged.ok());
  CHECK(ragged.code() == eplb::errc::shape_mismatch);
  CHECK(contains(ragged.message(), "logical_count[1]"));

  auto mixed = eplb::import_sglang_text("{\"logical_count\": [[1, 2], 3]}", "m.json", opts);
  REQUIRE_FALSE(mixed.ok());
  CHECK(mixed.code() == eplb::errc::shape_mismatch);

  auto deep = eplb::import_sglang_text("{\"logical_count\": [[[[1]]]]}", "d.json", opts);
  REQUIRE_FALSE(deep.ok());

  auto one_d = eplb::import_sglang_text("{\"logical_count\": [1, 2]}", "o.json", opts);
  REQUIRE_FALSE(one_d.ok());

  auto str = eplb::import_sglang_text("{\"logical_count\": [[1, \"2\"]]}", "s.json", opts);
  REQUIRE_FALSE(str.ok());
  CHECK(str.code() == eplb::errc::wrong_type);

  auto missing = eplb::import_sglang_text("{\"rank\": 0}", "x.json", opts);
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.code() == eplb::errc::missing_field);

  auto trailing = eplb::import_sglang_text("{\"logical_count\": [[1]]} []", "t.json", opts);
  REQUIRE_FALSE(trailing.ok());
  CHECK(trailing.code() == eplb::errc::invalid_json);

  auto broken = eplb::import_sglang_text("{\"logical_count\": [[1, 2]", "b.json", opts);
  REQUIRE_FALSE(broken.ok());

  auto big =
      eplb::import_sglang_text("{\"logical_count\": [[18446744073709551615]]}", "u.json", opts);
  REQUIRE_FALSE(big.ok());
  CHECK(big.code() == eplb::errc::out_of_range);

  auto overflow = eplb::import_sglang_text("{\"logical_count\": [[[9223372036854775807]], [[1]]]}",
                                           "o.json", opts);
  REQUIRE_FALSE(overflow.ok());
  CHECK(overflow.code() == eplb::errc::overflow);
  CHECK(contains(overflow.message(), "logical_count[1][0][0]"));

  eplb::import_options skip_all;
  skip_all.skip_layers = 1;
  auto empty = eplb::import_sglang_text("{\"logical_count\": [[1]]}", "e.json", skip_all);
  REQUIRE_FALSE(empty.ok());
  CHECK(empty.code() == eplb::errc::invalid_value);  // the flag does not fit the data: exit 1
}

TEST_CASE("LMDeploy statistics JSON and CSV matrices", "[import]") {
  eplb::import_options opts;
  opts.skip_layers = 1;
  auto lm = eplb::import_matrix(k_dir + "/lmdeploy_stats.json", opts);
  REQUIRE(lm.ok());
  CHECK(lm->load == engine_example_load());
  CHECK(lm->info.format == eplb::stats_format::matrix_json);
  CHECK(lm->info.layer_ids == std::vector<int>{1, 2});

  const eplb::import_options none;
  auto csv = eplb::import_matrix(k_dir + "/matrix.csv", none);
  REQUIRE(csv.ok());
  CHECK(csv->load == vllm_example_load());
  CHECK(csv->info.format == eplb::stats_format::matrix_csv);

  auto no_header = eplb::import_matrix_csv_text("1,2\n3.0,4\n", "a.csv", none);
  REQUIRE(no_header.ok());
  eplb::load_matrix expected(2, 2);
  expected << 1, 2, 3, 4;
  CHECK(no_header->load == expected);

  auto ragged = eplb::import_matrix_csv_text("a,b\n1,2\n\n3\n", "r.csv", none);
  REQUIRE_FALSE(ragged.ok());
  CHECK(ragged.code() == eplb::errc::shape_mismatch);
  CHECK(contains(ragged.message(), "r.csv:4: [1]:"));

  auto bad = eplb::import_matrix_csv_text("1,2\n3,x\n", "b.csv", none);
  REQUIRE_FALSE(bad.ok());
  CHECK(contains(bad.message(), "b.csv:2: [1][1]:"));

  auto frac = eplb::import_matrix_csv_text("1,2.5\n", "f.csv", none);
  REQUIRE_FALSE(frac.ok());  // a first line that is not numeric is a header: then nothing is left
  auto neg = eplb::import_matrix_csv_text("1,2\n-3,4\n", "n.csv", none);
  REQUIRE_FALSE(neg.ok());
  CHECK(contains(neg.message(), "n.csv:2: [1][0]:"));

  auto json_frac = eplb::import_matrix_json_text("[[1, 2],\n[3, 0.5]]", "j.json", none);
  REQUIRE_FALSE(json_frac.ok());
  CHECK(contains(json_frac.message(), "j.json:2: [1][1]:"));
  auto json_3d = eplb::import_matrix_json_text("[[[1]]]", "k.json", none);
  REQUIRE_FALSE(json_3d.ok());
}

TEST_CASE("stats formats are detected by content", "[import]") {
  auto fmt = [](const std::string& name) { return eplb::detect_stats_format(k_dir + "/" + name); };
  CHECK(*fmt("vllm_example.jsonl") == eplb::stats_format::vllm_jsonl);
  CHECK(*fmt("sglang_logical_count_2d.json") == eplb::stats_format::sglang_json);
  CHECK(*fmt("sglang_logical_count_3d.json") == eplb::stats_format::sglang_json);
  CHECK(*fmt("lmdeploy_stats.json") == eplb::stats_format::matrix_json);
  CHECK(*fmt("matrix.csv") == eplb::stats_format::matrix_csv);
  CHECK(*fmt("trtllm") == eplb::stats_format::trtllm_dir);
  CHECK(*fmt("trtllm/meta_info.json") == eplb::stats_format::trtllm_dir);

  temp_dir dir("detect");
  write_file(dir.file("mapping.jsonl"),
             "{\"record_type\": \"eplb_initial_mapping\", \"version\": 1}\n");
  auto mapping = eplb::detect_stats_format(dir.file("mapping.jsonl"));
  REQUIRE_FALSE(mapping.ok());
  CHECK(contains(mapping.message(), "eplb_initial_mapping"));
  write_file(dir.file("sglang_map.json"), "{\"physical_to_logical_map\": [[0]]}");
  CHECK_FALSE(eplb::detect_stats_format(dir.file("sglang_map.json")).ok());
  write_file(dir.file("stats.pt"), "PK\x03\x04");
  auto pt = eplb::detect_stats_format(dir.file("stats.pt"));
  REQUIRE_FALSE(pt.ok());
  CHECK(contains(pt.message(), "torch"));
  write_file(dir.file("empty.json"), "  \n");
  CHECK_FALSE(eplb::detect_stats_format(dir.file("empty.json")).ok());
  auto missing = eplb::detect_stats_format(dir.file("nope.json"));
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.code() == eplb::errc::io_error);

  auto vllm = eplb::import_stats(k_dir + "/vllm_example.jsonl", eplb::import_options{});
  REQUIRE_FALSE(vllm.ok());
  CHECK(vllm.code() == eplb::errc::invalid_argument);

  CHECK(*eplb::parse_stats_format("trtllm") == eplb::stats_format::trtllm_dir);
  CHECK(std::string(eplb::stats_format_name(eplb::stats_format::sglang_json)) == "sglang_json");
  CHECK_FALSE(eplb::parse_stats_format("pickle").ok());
}
