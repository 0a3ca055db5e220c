#pragma once
// Private: where the stats reader gets its bytes from, a file or an in-memory text, plain or
// compressed, so that every entry point shares one parsing path and behaves identically.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "eplb/error.hpp"

namespace eplb::detail {

/// A sequential source of bytes.
class byte_source {
 public:
  virtual ~byte_source() = default;
  /// Reads `n` bytes into `dst`, fewer only at the end of the input; io_error on failure.
  virtual result<std::size_t> read(char* dst, std::size_t n) = 0;
  /// Returns true when the input is known to have no more bytes (without reading).
  virtual bool at_end() const noexcept = 0;
  /// Returns the expected total size in bytes (0 when unknown), used to size the buffer.
  virtual std::uint64_t size_hint() const noexcept = 0;
  /// Returns the bytes taken from the underlying input so far (compressed bytes), for progress.
  virtual std::uint64_t consumed() const noexcept = 0;
  /// Returns true when a compressed input ended inside its stream and the source ended the text
  /// there (only when opened with allow_truncated).
  virtual bool truncated() const noexcept { return false; }
};

/// Reads an in-memory text; the text must outlive the source.
class memory_source final : public byte_source {
 public:
  explicit memory_source(std::string_view text) noexcept : text_(text) {}
  result<std::size_t> read(char* dst, std::size_t n) override;
  std::uint64_t size_hint() const noexcept override { return text_.size(); }
  bool at_end() const noexcept override { return pos_ == text_.size(); }
  std::uint64_t consumed() const noexcept override { return pos_; }

 private:
  std::string_view text_;
  std::size_t pos_ = 0;
};

/// Reads a file with plain read(2) calls (no stdio buffering on top of the reader's own buffer).
class file_source final : public byte_source {
 public:
  file_source() = default;
  file_source(const file_source&) = delete;
  file_source& operator=(const file_source&) = delete;
  ~file_source() override;
  /// Opens the file; io_error naming it when it cannot be opened or is a directory.
  status open(const std::string& path);
  /// Reads from a descriptor the caller opened (and closes): a FIFO or standard input.
  void adopt(int fd, const std::string& path);
  result<std::size_t> read(char* dst, std::size_t n) override;
  std::uint64_t size_hint() const noexcept override { return size_; }
  bool at_end() const noexcept override { return size_ > 0 && offset_ >= size_; }
  std::uint64_t consumed() const noexcept override { return offset_; }

 private:
  std::string path_;
  int fd_ = -1;
  bool owned_ = true;         // false for an adopted descriptor
  std::uint64_t size_ = 0;    // size of a regular file when opened, 0 otherwise
  std::uint64_t offset_ = 0;  // bytes read so far
};

/// Returns the bytes of `prefix` first, then the rest of `raw` (magic bytes already read, or the
/// prefix format detection read from a FIFO).
class prefixed_source final : public byte_source {
 public:
  prefixed_source(std::unique_ptr<byte_source> raw, std::string prefix)
      : raw_(std::move(raw)), prefix_(std::move(prefix)) {}
  result<std::size_t> read(char* dst, std::size_t n) override;
  bool at_end() const noexcept override { return pos_ == prefix_.size() && raw_->at_end(); }
  std::uint64_t size_hint() const noexcept override { return raw_->size_hint(); }
  std::uint64_t consumed() const noexcept override { return raw_->consumed(); }

 private:
  std::unique_ptr<byte_source> raw_;
  std::string prefix_;
  std::size_t pos_ = 0;
};

/// Returns the source of the text behind `raw`: `raw` itself when its first bytes are not
/// compressed data, else a source that decompresses it (gzip: 1f 8b, zstd: 28 b5 2f fd). A
/// `name` ending in .gz or .zst whose data lacks that format's magic bytes is an io_error naming
/// it; errors in the compressed data are io_errors too, and so is a stream that ends early
/// unless `allow_truncated`, which ends the text where the stream ends (see truncated()).
result<std::unique_ptr<byte_source>> open_text_source(std::unique_ptr<byte_source> raw,
                                                      const std::string& name,
                                                      bool allow_truncated = false);

}  // namespace eplb::detail
