#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "eplb/mapping.hpp"

using namespace eplb;
namespace fs = std::filesystem;

namespace {
fs::path temp_dir() {
  std::string tmpl = (fs::temp_directory_path() / "eplb-mapping-XXXXXX").string();
  REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
  return tmpl;
}
}  // namespace

TEST_CASE("vLLM mapping record is byte-identical to the reference tool's output") {
  // formats/vllm-offline-eplb.md section 5: E=3, R=1, P=4, EP=2, L=2.
  topology t{2, 3, 4, 2, 1, 1};
  placement p;
  p.num_layers = 2;
  p.num_slots = 4;
  p.num_experts = 3;
  p.physical_to_logical = {0, 2, 0, 1, 1, 2, 1, 0};
  auto text = to_vllm_mapping(p, t);
  REQUIRE(text.ok());
  CHECK(*text ==
        "{\"record_type\": \"eplb_initial_mapping\", \"version\": 1, \"num_redundant_experts\": 1, "
        "\"num_slots\": 4, \"initial_global_assignments\": {\"0\": [0, 2, 0, 1], \"1\": [1, 2, 1, "
        "0]}}\n");
}

TEST_CASE("vLLM mapping refuses placements its loader would reject") {
  topology t{1, 3, 4, 2, 1, 1};
  placement p;
  p.num_layers = 1;
  p.num_slots = 4;
  p.num_experts = 3;
  p.physical_to_logical = {0, 0, 0, 1};  // expert 2 has no slot
  auto text = to_vllm_mapping(p, t);
  REQUIRE_FALSE(text.ok());
  CHECK_THAT(text.message(), Catch::Contains("expert 2 has no slot"));
  // More than 1024 replicas of one expert.
  topology big{1, 2, 1026, 2, 1, 1};
  placement q;
  q.num_layers = 1;
  q.num_slots = 1026;
  q.num_experts = 2;
  q.physical_to_logical.assign(1026, 0);
  q.physical_to_logical[1] = 1;
  auto r = to_vllm_mapping(q, big);
  REQUIRE_FALSE(r.ok());
  CHECK_THAT(r.message(), Catch::Contains("1023"));
}

TEST_CASE("atomic write replaces the target and leaves no temporary file") {
  const fs::path dir = temp_dir();
  const std::string path = (dir / "m.jsonl").string();
  REQUIRE(write_file_atomic(path, "old\n").ok());
  REQUIRE(write_file_atomic(path, "new\n").ok());
  auto back = read_file(path);
  REQUIRE(back.ok());
  CHECK(*back == "new\n");
  int entries = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    (void)e;
    ++entries;
  }
  CHECK(entries == 1);
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0644);
  fs::remove_all(dir);
}

TEST_CASE("atomic write into a missing directory fails with the path and keeps nothing") {
  const fs::path dir = temp_dir();
  const std::string path = (dir / "nope" / "m.jsonl").string();
  status s = write_file_atomic(path, "x");
  REQUIRE_FALSE(s.ok());
  CHECK(s.code() == errc::io_error);
  CHECK_THAT(s.message(), Catch::Contains(path));
  CHECK_FALSE(fs::exists(path));
  fs::remove_all(dir);
}

TEST_CASE("atomic write into a read-only directory fails and keeps the previous file") {
  if (::geteuid() == 0) {
    // root ignores directory permissions; the failure path is covered by the missing-directory case.
    WARN("running as root: read-only directory case not observable");
    return;
  }
  const fs::path dir = temp_dir();
  const std::string path = (dir / "m.jsonl").string();
  REQUIRE(write_file_atomic(path, "old\n").ok());
  fs::permissions(dir, fs::perms::owner_read | fs::perms::owner_exec);
  status s = write_file_atomic(path, "new\n");
  fs::permissions(dir, fs::perms::owner_all);
  REQUIRE_FALSE(s.ok());
  CHECK(*read_file(path) == "old\n");
  fs::remove_all(dir);
}
