#include "eplb/error.hpp"

namespace eplb {

const char* errc_name(errc code) noexcept {
  switch (code) {
    case errc::ok: return "ok";
    case errc::io_error: return "io_error";
    case errc::invalid_json: return "invalid_json";
    case errc::wrong_type: return "wrong_type";
    case errc::missing_field: return "missing_field";
    case errc::shape_mismatch: return "shape_mismatch";
    case errc::out_of_range: return "out_of_range";
    case errc::invalid_value: return "invalid_value";
    case errc::bad_sequence: return "bad_sequence";
    case errc::no_records: return "no_records";
    case errc::invalid_topology: return "invalid_topology";
    case errc::invalid_argument: return "invalid_argument";
    case errc::overflow: return "overflow";
    case errc::limit_exceeded: return "limit_exceeded";
    case errc::internal: return "internal";
  }
  return "unknown";
}

std::string printable(std::string_view text) {
  static const char hex[] = "0123456789abcdef";
  std::string out;
  out.reserve(text.size());
  std::size_t i = 0;
  while (i < text.size()) {
    const auto c = static_cast<unsigned char>(text[i]);
    // The length of a well-formed UTF-8 sequence starting here, 0 if it is not one.
    std::size_t n = 0;
    if (c >= 0x20 && c < 0x7f) {
      n = 1;
    } else if (c >= 0xc2 && c <= 0xf4) {
      n = c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
      if (i + n > text.size()) n = 0;
      for (std::size_t j = 1; j < n; ++j) {
        if ((static_cast<unsigned char>(text[i + j]) & 0xc0) != 0x80) n = 0;
      }
    }
    if (n > 0) {
      out.append(text, i, n);
      i += n;
    } else {
      switch (c) {
        case '\n':
          out += "\\n";
          break;
        case '\r':
          out += "\\r";
          break;
        case '\t':
          out += "\\t";
          break;
        default:
          out += "\\x";
          out += hex[c >> 4];
          out += hex[c & 15];
      }
      ++i;
    }
  }
  return out;
}

error make_error(errc code, const position& where, const std::string& field,
                 const std::string& what) {
  std::string msg;
  if (!where.file.empty()) {
    msg += where.file;
    if (where.line > 0) {
      msg += ':';
      msg += std::to_string(where.line);
    }
    msg += ": ";
  }
  if (!field.empty()) msg += field + ": ";
  msg += what;
  return error{code, std::move(msg)};
}

}  // namespace eplb
