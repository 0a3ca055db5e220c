#pragma once
// SHA-256 (FIPS 180-4) for provenance: eplb-gen records the digest of every input file in the
// metadata it writes, and vLLM's loader compares the digest of the mapping file across ranks.

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "eplb/error.hpp"

namespace eplb {

/// Incremental SHA-256: feed bytes with update(), then read the digest once with finish().
class sha256 {
 public:
  /// Starts a new digest.
  sha256() noexcept;
  /// Appends bytes to the message.
  void update(const void* data, std::size_t size) noexcept;
  /// Appends the bytes of a string to the message.
  void update(std::string_view data) noexcept { update(data.data(), data.size()); }
  /// Pads the message and returns the 32-byte digest; the object must not be updated afterwards.
  std::array<std::uint8_t, 32> finish() noexcept;
  /// Pads the message and returns the digest as 64 lowercase hex digits.
  std::string finish_hex();

 private:
  void compress(const std::uint8_t* block) noexcept;

  std::array<std::uint32_t, 8> state_{};
  std::array<std::uint8_t, 64> buffer_{};
  std::size_t buffered_ = 0;
  std::uint64_t length_ = 0;  // message length in bytes
};

/// Returns the SHA-256 of a byte string as 64 lowercase hex digits.
std::string sha256_hex(std::string_view data);

/// Hashes a file in fixed-size chunks; returns its digest as 64 lowercase hex digits, or io_error
/// naming the path when it cannot be opened or read.
result<std::string> sha256_file(const std::string& path);

}  // namespace eplb
