// SHA-256 against the FIPS 180-2 appendix vectors, plus chunking and file hashing.
#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "eplb/sha256.hpp"

namespace {

// FIPS 180-2, appendix B.1-B.3 (and the well-known digest of the empty message).
constexpr const char* k_abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
constexpr const char* k_empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
constexpr const char* k_448 = "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1";
constexpr const char* k_million_a =
    "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0";
constexpr const char* k_448_msg = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";

}  // namespace

TEST_CASE("sha256 matches the FIPS 180-2 vectors", "[sha256]") {
  CHECK(eplb::sha256_hex("abc") == k_abc);
  CHECK(eplb::sha256_hex("") == k_empty);
  CHECK(eplb::sha256_hex(k_448_msg) == k_448);
  CHECK(eplb::sha256_hex(std::string(1000000, 'a')) == k_million_a);
}

TEST_CASE("sha256 gives the same digest whatever the chunking", "[sha256]") {
  const std::string msg(1000000, 'a');
  for (std::size_t chunk : {1u, 3u, 55u, 56u, 63u, 64u, 65u, 4096u}) {
    eplb::sha256 h;
    for (std::size_t i = 0; i < msg.size(); i += chunk) {
      h.update(msg.data() + i, std::min(chunk, msg.size() - i));
    }
    INFO("chunk " << chunk);
    CHECK(h.finish_hex() == k_million_a);
  }
  // Byte 55/56/64 boundaries decide whether padding spills into a second block.
  eplb::sha256 h;
  h.update(k_448_msg);
  CHECK(h.finish_hex() == k_448);
}

TEST_CASE("sha256_file hashes a file and reports a missing one", "[sha256]") {
  const auto dir = std::filesystem::temp_directory_path();
  const auto path = (dir / "eplb_sha256_test.bin").string();
  {
    std::ofstream out(path, std::ios::binary);
    out << std::string(1000000, 'a');
  }
  auto digest = eplb::sha256_file(path);
  REQUIRE(digest.ok());
  CHECK(*digest == k_million_a);
  std::remove(path.c_str());

  auto missing = eplb::sha256_file(path);
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.code() == eplb::errc::io_error);
  CHECK(missing.message().find(path) != std::string::npos);
}
