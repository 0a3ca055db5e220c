#pragma once
// Error model of the compiled library: functions return `status` or `result<T>`; nothing throws
// across the API and nothing prints. Messages are complete sentences that already carry the
// position ("file:line: field: what"), so the CLI prints them as they are.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace eplb {

/// Category of a failure; the message carries the details.
enum class errc : int {
  ok = 0,
  io_error,          // a file could not be opened, read, written or renamed
  invalid_json,      // malformed JSON, truncated line, garbage
  wrong_type,        // a field has the wrong JSON type
  missing_field,     // a required field is absent
  shape_mismatch,    // a shape differs from the one expected
  out_of_range,      // an index or value lies outside its valid range
  invalid_value,     // a value is not acceptable (negative load, bad version, ...)
  bad_sequence,      // records appear in an order the format forbids
  no_records,        // nothing usable was found
  invalid_topology,  // the requested topology is not valid
  invalid_argument,  // an option value is not valid, or options clash (a usage error: exit 2)
  overflow,          // a 64-bit sum overflowed
  limit_exceeded,    // an input exceeds a documented limit
  internal,          // a bug: an invariant did not hold
};

/// Returns a short stable name for an error code ("invalid_json", ...).
const char* errc_name(errc code) noexcept;

/// A failure: its category and a full human-readable message.
struct error {
  errc code = errc::internal;
  std::string message;
};

/// Where in an input a problem was found; printed as "file:line" (line 0 means "whole file").
struct position {
  std::string file;
  std::uint64_t line = 0;
  std::uint64_t byte = 0;  // byte offset of the start of the line in the file
};

/// Returns `text` safe to print on a terminal: control characters, DEL and bytes that are not
/// UTF-8 become escapes (\n, \t, \x1b); other text is unchanged, so applying it twice changes
/// nothing more.
std::string printable(std::string_view text);

/// Builds an error whose message reads "file:line: field: what" (parts that are empty are left out).
error make_error(errc code, const position& where, const std::string& field, const std::string& what);

/// Success or an error; [[nodiscard]] so a failure cannot be dropped silently.
class [[nodiscard]] status {
 public:
  status() = default;
  status(error e) : error_(std::move(e)) {}  // NOLINT(google-explicit-constructor)
  static status success() { return status(); }
  bool ok() const noexcept { return !error_.has_value(); }
  explicit operator bool() const noexcept { return ok(); }
  const error& err() const { return *error_; }
  errc code() const noexcept { return error_ ? error_->code : errc::ok; }
  const std::string& message() const {
    static const std::string empty;
    return error_ ? error_->message : empty;
  }

 private:
  std::optional<error> error_;
};

/// A value of type T or an error.
template <class T>
class [[nodiscard]] result {
 public:
  result(T value) : v_(std::move(value)) {}  // NOLINT(google-explicit-constructor)
  result(error e) : v_(std::move(e)) {}      // NOLINT(google-explicit-constructor)
  result(status s) : v_(s.err()) {}          // NOLINT(google-explicit-constructor): s must be a failure
  bool ok() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &std::get<0>(v_); }
  const T* operator->() const { return &std::get<0>(v_); }
  T& operator*() & { return std::get<0>(v_); }
  const T& operator*() const& { return std::get<0>(v_); }
  const error& err() const { return std::get<1>(v_); }
  const std::string& message() const { return std::get<1>(v_).message; }
  errc code() const noexcept { return ok() ? errc::ok : std::get<1>(v_).code; }
  status to_status() const { return ok() ? status() : status(err()); }

 private:
  std::variant<T, error> v_;
};

}  // namespace eplb
