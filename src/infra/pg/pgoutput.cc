#include "infra/pg/pgoutput.h"

#include <fmt/format.h>

namespace shopcqrs::infra::pg::pgoutput {

namespace {

// Bounds-checked big-endian reads from one message.
class Reader {
 public:
  Reader(std::string_view data, char type) : data_(data), type_(type) {}

  std::uint8_t U8(std::string_view field) {
    Need(1, field);
    return static_cast<std::uint8_t>(data_[at_++]);
  }
  std::uint16_t U16(std::string_view field) {
    return static_cast<std::uint16_t>(Unsigned(2, field));
  }
  std::uint32_t U32(std::string_view field) {
    return static_cast<std::uint32_t>(Unsigned(4, field));
  }
  std::int32_t I32(std::string_view field) { return static_cast<std::int32_t>(U32(field)); }
  std::uint64_t U64(std::string_view field) { return Unsigned(8, field); }
  std::int64_t I64(std::string_view field) { return static_cast<std::int64_t>(U64(field)); }
  // A NUL-terminated string.
  std::string String(std::string_view field) {
    const auto end = data_.find('\0', at_);
    if (end == std::string_view::npos) Fail(fmt::format("{} has no terminating NUL", field));
    std::string out(data_.substr(at_, end - at_));
    at_ = end + 1;
    return out;
  }
  std::string Bytes(std::size_t n, std::string_view field) {
    Need(n, field);
    std::string out(data_.substr(at_, n));
    at_ += n;
    return out;
  }
  void End() {
    if (at_ != data_.size()) {
      Fail(fmt::format("{} unexpected trailing bytes", data_.size() - at_));
    }
  }
  [[noreturn]] void Fail(const std::string& what) const {
    throw DecodeError(fmt::format("pgoutput message '{}': {} (at byte {} of {})", Printable(type_),
                                  what, at_, data_.size()));
  }

 private:
  static std::string Printable(char c) {
    if (c >= 0x20 && c < 0x7f) return std::string(1, c);
    return fmt::format("\\x{:02x}", static_cast<unsigned char>(c));
  }
  void Need(std::size_t n, std::string_view field) const {
    if (data_.size() - at_ < n) {
      Fail(fmt::format("truncated: {} needs {} bytes, {} left", field, n, data_.size() - at_));
    }
  }
  std::uint64_t Unsigned(std::size_t n, std::string_view field) {
    Need(n, field);
    std::uint64_t value = 0;
    for (std::size_t i = 0; i < n; ++i) {
      value = value << 8 | static_cast<std::uint8_t>(data_[at_ + i]);
    }
    at_ += n;
    return value;
  }

  std::string_view data_;
  char type_;
  std::size_t at_ = 1;  // after the type byte
};

std::string Namespace(Reader& in) {
  std::string name = in.String("namespace");
  return name.empty() ? "pg_catalog" : name;
}

Tuple ReadTuple(Reader& in) {
  Tuple tuple;
  const std::uint16_t n = in.U16("tuple column count");
  tuple.values.reserve(n);
  for (std::uint16_t i = 0; i < n; ++i) {
    Value value;
    const char kind = static_cast<char>(in.U8("tuple column kind"));
    switch (kind) {
      case 'n':
        value.kind = Value::Kind::kNull;
        break;
      case 'u':
        value.kind = Value::Kind::kUnchanged;
        break;
      case 't':
      case 'b': {
        value.kind = kind == 't' ? Value::Kind::kText : Value::Kind::kBinary;
        const std::int32_t length = in.I32("tuple value length");
        if (length < 0) in.Fail(fmt::format("negative value length {}", length));
        value.data = in.Bytes(static_cast<std::size_t>(length), "tuple value");
        break;
      }
      default:
        in.Fail(
            fmt::format("unknown tuple column kind 0x{:02x}", static_cast<unsigned char>(kind)));
    }
    tuple.values.push_back(std::move(value));
  }
  return tuple;
}

}  // namespace

Decoded Decode(std::string_view payload) {
  if (payload.empty()) throw DecodeError("pgoutput message is empty");
  const char type = payload[0];
  Reader in(payload, type);
  Decoded out;
  switch (type) {
    case 'B': {
      Begin m;
      m.final_lsn = in.U64("final LSN");
      m.commit_time = in.I64("commit time");
      m.xid = in.U32("xid");
      out = m;
      break;
    }
    case 'C': {
      Commit m;
      m.flags = in.U8("flags");
      m.commit_lsn = in.U64("commit LSN");
      m.end_lsn = in.U64("end LSN");
      m.commit_time = in.I64("commit time");
      if (m.end_lsn < m.commit_lsn) in.Fail("end LSN before commit LSN");
      out = m;
      break;
    }
    case 'O': {
      Origin m;
      m.commit_lsn = in.U64("origin commit LSN");
      m.name = in.String("origin name");
      out = std::move(m);
      break;
    }
    case 'R': {
      Relation m;
      m.id = in.U32("relation id");
      m.namespace_name = Namespace(in);
      m.name = in.String("relation name");
      m.replica_identity = in.U8("replica identity");
      const std::uint16_t n = in.U16("column count");
      m.columns.reserve(n);
      for (std::uint16_t i = 0; i < n; ++i) {
        Column c;
        c.flags = in.U8("column flags");
        c.name = in.String("column name");
        c.type_oid = in.U32("column type");
        c.type_modifier = in.I32("column type modifier");
        m.columns.push_back(std::move(c));
      }
      out = std::move(m);
      break;
    }
    case 'Y': {
      Type m;
      m.id = in.U32("type id");
      m.namespace_name = Namespace(in);
      m.name = in.String("type name");
      out = std::move(m);
      break;
    }
    case 'I': {
      Insert m;
      m.relation_id = in.U32("relation id");
      const char tag = static_cast<char>(in.U8("tuple tag"));
      if (tag != 'N')
        in.Fail(
            fmt::format("expected new tuple 'N', got 0x{:02x}", static_cast<unsigned char>(tag)));
      m.tuple = ReadTuple(in);
      out = std::move(m);
      break;
    }
    case 'U': {
      Update m;
      m.relation_id = in.U32("relation id");
      char tag = static_cast<char>(in.U8("tuple tag"));
      if (tag == 'K' || tag == 'O') {
        m.old_kind = tag;
        m.old_tuple = ReadTuple(in);
        tag = static_cast<char>(in.U8("tuple tag"));
      }
      if (tag != 'N')
        in.Fail(
            fmt::format("expected new tuple 'N', got 0x{:02x}", static_cast<unsigned char>(tag)));
      m.new_tuple = ReadTuple(in);
      out = std::move(m);
      break;
    }
    case 'D': {
      Delete m;
      m.relation_id = in.U32("relation id");
      const char tag = static_cast<char>(in.U8("tuple tag"));
      if (tag != 'K' && tag != 'O') {
        in.Fail(fmt::format("expected old key 'K' or old tuple 'O', got 0x{:02x}",
                            static_cast<unsigned char>(tag)));
      }
      m.old_kind = tag;
      m.old_tuple = ReadTuple(in);
      out = std::move(m);
      break;
    }
    case 'T': {
      Truncate m;
      const std::uint32_t n = in.U32("relation count");
      m.options = in.U8("options");
      // Each id takes 4 bytes: a count larger than the message is rejected before allocating.
      if (n > (payload.size() - 1) / 4) in.Fail(fmt::format("relation count {} too large", n));
      m.relation_ids.reserve(n);
      for (std::uint32_t i = 0; i < n; ++i) m.relation_ids.push_back(in.U32("relation id"));
      out = std::move(m);
      break;
    }
    case 'M': {
      Message m;
      m.flags = in.U8("flags");
      m.lsn = in.U64("message LSN");
      m.prefix = in.String("prefix");
      const std::int32_t length = in.I32("content length");
      if (length < 0) in.Fail(fmt::format("negative content length {}", length));
      m.content = in.Bytes(static_cast<std::size_t>(length), "content");
      out = std::move(m);
      break;
    }
    default:
      in.Fail("unknown message type (not part of pgoutput protocol version 1)");
  }
  in.End();
  return out;
}

}  // namespace shopcqrs::infra::pg::pgoutput
