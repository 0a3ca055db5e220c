// Compressed stats files: gzip (zlib) and zstd (libzstd) sources that decompress as the reader
// asks for bytes, so a compressed trace streams in the same constant memory as a plain one. The
// format is told by the first bytes of the data, not by the file name.

#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "stats/byte_source.hpp"
#include "stats/text.hpp"

namespace eplb::detail {

namespace {

// Compressed bytes asked of the file per read.
constexpr std::size_t input_chunk = std::size_t{256} << 10;

error compressed_error(const std::string& name, const char* format, const std::string& what) {
  return make_error(errc::io_error, position{name, 0, 0}, "", cat(format, ": ", what));
}

// The compressed input of a decompressing source: a buffer refilled from the raw source.
class compressed_input {
 public:
  compressed_input(std::unique_ptr<byte_source> raw, const std::string& prefix)
      : raw_(std::move(raw)), buf_(new unsigned char[input_chunk]) {
    std::memcpy(buf_.get(), prefix.data(), prefix.size());
    size_ = prefix.size();
  }
  // Refills the buffer when it is used up; returns false on a read error (in `err`).
  bool refill(error& err) {
    if (pos_ < size_ || eof_) return true;
    auto got = raw_->read(reinterpret_cast<char*>(buf_.get()), input_chunk);
    if (!got) {
      err = got.err();
      return false;
    }
    pos_ = 0;
    size_ = *got;
    eof_ = *got < input_chunk;
    return true;
  }
  bool exhausted() const noexcept { return pos_ == size_ && eof_; }
  std::uint64_t consumed() const noexcept { return raw_->consumed(); }
  std::uint64_t offset() const noexcept { return raw_->consumed() - (size_ - pos_); }

  std::unique_ptr<byte_source> raw_;
  std::unique_ptr<unsigned char[]> buf_;
  std::size_t pos_ = 0, size_ = 0;
  bool eof_ = false;
};

class gzip_source final : public byte_source {
 public:
  gzip_source(std::unique_ptr<byte_source> raw, std::string name, const std::string& prefix,
              bool allow_truncated)
      : in_(std::move(raw), prefix), name_(std::move(name)), allow_truncated_(allow_truncated) {}
  gzip_source(const gzip_source&) = delete;
  gzip_source& operator=(const gzip_source&) = delete;
  ~gzip_source() override {
    if (ready_) inflateEnd(&zs_);
  }

  status init() {
    // 16 + MAX_WBITS: a gzip wrapper (header and CRC checked), not raw deflate.
    if (inflateInit2(&zs_, 16 + MAX_WBITS) != Z_OK) {
      return compressed_error(name_, "gzip", "cannot initialise zlib");
    }
    ready_ = true;
    return status::success();
  }

  result<std::size_t> read(char* dst, std::size_t n) override {
    std::size_t total = 0;
    while (total < n && !done_) {
      error err;
      if (!in_.refill(err)) return err;
      if (member_end_) {
        // Concatenated members (cat a.gz b.gz) decompress to the concatenated texts, as gzip -d.
        if (in_.exhausted()) {
          done_ = true;
          break;
        }
        inflateReset(&zs_);
        member_end_ = false;
      }
      zs_.next_in = in_.buf_.get() + in_.pos_;
      zs_.avail_in = static_cast<uInt>(in_.size_ - in_.pos_);
      zs_.next_out = reinterpret_cast<Bytef*>(dst + total);
      zs_.avail_out = static_cast<uInt>(std::min<std::size_t>(n - total, UINT_MAX));
      const uInt before_out = zs_.avail_out;
      const int rc = inflate(&zs_, Z_NO_FLUSH);
      in_.pos_ = in_.size_ - zs_.avail_in;
      total += before_out - zs_.avail_out;
      if (rc == Z_STREAM_END) {
        member_end_ = true;
      } else if (rc == Z_BUF_ERROR || (rc == Z_OK && before_out == zs_.avail_out)) {
        // No progress: more input is needed, and there is none.
        if (in_.exhausted()) {
          if (allow_truncated_) {
            truncated_ = done_ = true;
            break;
          }
          return compressed_error(name_, "gzip",
                                  "the compressed stream is truncated (the file ends inside it)");
        }
      } else if (rc != Z_OK) {
        return compressed_error(
            name_, "gzip",
            cat("corrupt data near compressed byte ", in_.offset(), ": ",
                zs_.msg != nullptr ? std::string(zs_.msg) : cat("zlib error ", rc)));
      }
    }
    return total;
  }
  bool at_end() const noexcept override { return done_ || (member_end_ && in_.exhausted()); }
  std::uint64_t size_hint() const noexcept override { return 0; }
  std::uint64_t consumed() const noexcept override { return in_.consumed(); }
  bool truncated() const noexcept override { return truncated_; }

 private:
  compressed_input in_;
  std::string name_;
  bool allow_truncated_;
  z_stream zs_{};
  bool ready_ = false;
  bool member_end_ = false;
  bool done_ = false;
  bool truncated_ = false;
};

class zstd_source final : public byte_source {
 public:
  zstd_source(std::unique_ptr<byte_source> raw, std::string name, const std::string& prefix,
              bool allow_truncated)
      : in_(std::move(raw), prefix),
        name_(std::move(name)),
        allow_truncated_(allow_truncated),
        ctx_(ZSTD_createDCtx()) {}
  zstd_source(const zstd_source&) = delete;
  zstd_source& operator=(const zstd_source&) = delete;
  ~zstd_source() override { ZSTD_freeDCtx(ctx_); }

  status init() {
    if (ctx_ == nullptr) return compressed_error(name_, "zstd", "cannot create a context");
    return status::success();
  }

  result<std::size_t> read(char* dst, std::size_t n) override {
    std::size_t total = 0;
    while (total < n && !done_) {
      error err;
      if (!in_.refill(err)) return err;
      if (frame_end_ && in_.exhausted()) {  // the last frame is decoded and flushed
        done_ = true;
        break;
      }
      ZSTD_inBuffer input{in_.buf_.get(), in_.size_, in_.pos_};
      ZSTD_outBuffer output{dst + total, n - total, 0};
      const std::size_t rc = ZSTD_decompressStream(ctx_, &output, &input);
      const bool progress = input.pos > in_.pos_ || output.pos > 0;
      in_.pos_ = input.pos;
      total += output.pos;
      if (ZSTD_isError(rc)) {
        return compressed_error(name_, "zstd",
                                cat("corrupt data near compressed byte ", in_.offset(), ": ",
                                    std::string(ZSTD_getErrorName(rc))));
      }
      frame_end_ = rc == 0;
      // Given room, a decoder that still holds data writes some: no progress with the input used
      // up means it needs bytes the file does not have. (Room alone does not say the decoder is
      // empty: with a tiny output it may return after reading a block header.)
      if (!progress && in_.exhausted()) {
        if (!allow_truncated_) {
          return compressed_error(name_, "zstd",
                                  "the compressed stream is truncated (the file ends inside it)");
        }
        truncated_ = done_ = true;
      }
    }
    return total;
  }
  bool at_end() const noexcept override { return done_ || (frame_end_ && in_.exhausted()); }
  std::uint64_t size_hint() const noexcept override { return 0; }
  std::uint64_t consumed() const noexcept override { return in_.consumed(); }
  bool truncated() const noexcept override { return truncated_; }

 private:
  compressed_input in_;
  std::string name_;
  bool allow_truncated_;
  ZSTD_DCtx* ctx_;
  bool frame_end_ = false;
  bool done_ = false;
  bool truncated_ = false;
};

bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

result<std::unique_ptr<byte_source>> open_text_source(std::unique_ptr<byte_source> raw,
                                                      const std::string& name,
                                                      bool allow_truncated) {
  char magic[4] = {};
  auto got = raw->read(magic, sizeof magic);
  if (!got) return got.err();
  std::string prefix(magic, *got);
  const bool is_gzip = prefix.size() >= 2 && prefix.compare(0, 2, "\x1f\x8b") == 0;
  const bool is_zstd = prefix.size() >= 4 && prefix.compare(0, 4, "\x28\xb5\x2f\xfd") == 0;
  if (is_gzip) {
    auto source = std::make_unique<gzip_source>(std::move(raw), name, prefix, allow_truncated);
    if (auto st = source->init(); !st) return st.err();
    return std::unique_ptr<byte_source>(std::move(source));
  }
  if (is_zstd) {
    auto source = std::make_unique<zstd_source>(std::move(raw), name, prefix, allow_truncated);
    if (auto st = source->init(); !st) return st.err();
    return std::unique_ptr<byte_source>(std::move(source));
  }
  // A compressed name over other data is a mix-up worth stopping for, not JSON to complain about.
  if (ends_with(name, ".gz") || ends_with(name, ".zst")) {
    const bool gz = ends_with(name, ".gz");
    return make_error(errc::io_error, position{name, 0, 0}, "",
                      cat("the name says ", gz ? "gzip" : "zstd",
                          " but the data does not start with its magic bytes (",
                          gz ? "1f 8b" : "28 b5 2f fd", ")"));
  }
  return std::unique_ptr<byte_source>(
      std::make_unique<prefixed_source>(std::move(raw), std::move(prefix)));
}

}  // namespace eplb::detail
