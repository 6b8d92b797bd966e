// The pgoutput decoder against hand-built messages (protocol version 1 layouts of the "Logical
// Replication Message Formats" chapter), and the LSN text form.
#include "infra/pg/pgoutput.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <variant>

#include "infra/pg/replication_stream.h"

namespace shopcqrs::infra::pg {
namespace {

using namespace pgoutput;

// Builds a message the way the server's pq_send* functions do (big-endian, NUL-terminated).
class Bytes {
 public:
  explicit Bytes(char type) { out_.push_back(type); }
  Bytes& U8(std::uint8_t v) {
    out_.push_back(static_cast<char>(v));
    return *this;
  }
  Bytes& U16(std::uint16_t v) { return Int(v, 2); }
  Bytes& U32(std::uint32_t v) { return Int(v, 4); }
  Bytes& U64(std::uint64_t v) { return Int(v, 8); }
  Bytes& Str(const std::string& s) {
    out_ += s;
    out_.push_back('\0');
    return *this;
  }
  Bytes& Raw(const std::string& s) {
    out_ += s;
    return *this;
  }
  Bytes& Text(const std::string& s) {
    U8('t').U32(static_cast<std::uint32_t>(s.size()));
    return Raw(s);
  }
  const std::string& str() const { return out_; }

 private:
  Bytes& Int(std::uint64_t v, int bytes) {
    for (int i = bytes - 1; i >= 0; --i) out_.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
    return *this;
  }
  std::string out_;
};

TEST(PgOutput, DecodesBegin) {
  auto m = std::get<Begin>(
      Decode(Bytes('B').U64(0x1'0000'00A0).U64(757'000'000'000'000).U32(4242).str()));
  EXPECT_EQ(m.final_lsn, 0x1'0000'00A0u);
  EXPECT_EQ(m.commit_time, 757'000'000'000'000);
  EXPECT_EQ(m.xid, 4242u);
}

TEST(PgOutput, DecodesCommit) {
  auto m = std::get<Commit>(Decode(Bytes('C').U8(0).U64(0x100).U64(0x138).U64(99).str()));
  EXPECT_EQ(m.flags, 0);
  EXPECT_EQ(m.commit_lsn, 0x100u);
  EXPECT_EQ(m.end_lsn, 0x138u);
  EXPECT_EQ(m.commit_time, 99);
}

TEST(PgOutput, RejectsCommitEndingBeforeItStarts) {
  EXPECT_THROW(Decode(Bytes('C').U8(0).U64(0x200).U64(0x100).U64(0).str()), DecodeError);
}

TEST(PgOutput, DecodesRelationWithPgCatalogShorthand) {
  auto bytes = Bytes('R')
                   .U32(16385)
                   .Str("public")
                   .Str("outbox")
                   .U8('d')
                   .U16(2)
                   .U8(1)
                   .Str("position")
                   .U32(20)
                   .U32(0xFFFFFFFF)
                   .U8(0)
                   .Str("payload")
                   .U32(114)
                   .U32(0xFFFFFFFF);
  auto m = std::get<Relation>(Decode(bytes.str()));
  EXPECT_EQ(m.id, 16385u);
  EXPECT_EQ(m.namespace_name, "public");
  EXPECT_EQ(m.name, "outbox");
  EXPECT_EQ(m.replica_identity, 'd');
  ASSERT_EQ(m.columns.size(), 2u);
  EXPECT_EQ(m.columns[0].flags, 1);
  EXPECT_EQ(m.columns[0].name, "position");
  EXPECT_EQ(m.columns[0].type_oid, 20u);
  EXPECT_EQ(m.columns[0].type_modifier, -1);
  EXPECT_EQ(m.columns[1].name, "payload");
  EXPECT_EQ(m.columns[1].type_oid, 114u);

  auto catalog =
      std::get<Relation>(Decode(Bytes('R').U32(1).Str("").Str("t").U8('n').U16(0).str()));
  EXPECT_EQ(catalog.namespace_name, "pg_catalog");
}

TEST(PgOutput, DecodesInsertWithNullUnchangedAndTextColumns) {
  auto m = std::get<Insert>(
      Decode(Bytes('I').U32(16385).U8('N').U16(3).U8('n').U8('u').Text("{\"a\":1}").str()));
  EXPECT_EQ(m.relation_id, 16385u);
  ASSERT_EQ(m.tuple.values.size(), 3u);
  EXPECT_EQ(m.tuple.values[0].kind, Value::Kind::kNull);
  EXPECT_EQ(m.tuple.values[1].kind, Value::Kind::kUnchanged);
  EXPECT_EQ(m.tuple.values[2].kind, Value::Kind::kText);
  EXPECT_EQ(m.tuple.values[2].data, "{\"a\":1}");
}

TEST(PgOutput, TextValuesMayHoldAnyByteAndBeEmpty) {
  const std::string odd("a\0b\xff", 4);
  auto m = std::get<Insert>(Decode(Bytes('I').U32(1).U8('N').U16(2).Text(odd).Text("").str()));
  EXPECT_EQ(m.tuple.values[0].data, odd);
  EXPECT_EQ(m.tuple.values[1].data, "");
}

TEST(PgOutput, DecodesUpdateDeleteTruncateTypeOriginMessage) {
  auto update = std::get<Update>(
      Decode(Bytes('U').U32(7).U8('K').U16(1).Text("1").U8('N').U16(1).Text("2").str()));
  EXPECT_EQ(update.old_kind, 'K');
  ASSERT_TRUE(update.old_tuple.has_value());
  EXPECT_EQ(update.old_tuple->values[0].data, "1");
  EXPECT_EQ(update.new_tuple.values[0].data, "2");
  auto plain = std::get<Update>(Decode(Bytes('U').U32(7).U8('N').U16(1).Text("3").str()));
  EXPECT_FALSE(plain.old_tuple.has_value());

  auto del = std::get<Delete>(Decode(Bytes('D').U32(7).U8('O').U16(1).Text("4").str()));
  EXPECT_EQ(del.old_kind, 'O');
  EXPECT_EQ(del.old_tuple.values[0].data, "4");

  auto truncate = std::get<Truncate>(Decode(Bytes('T').U32(2).U8(3).U32(10).U32(11).str()));
  EXPECT_EQ(truncate.options, 3);
  EXPECT_EQ(truncate.relation_ids, (std::vector<std::uint32_t>{10, 11}));

  auto type = std::get<Type>(Decode(Bytes('Y').U32(600).Str("").Str("point").str()));
  EXPECT_EQ(type.namespace_name, "pg_catalog");
  EXPECT_EQ(type.name, "point");

  auto origin = std::get<Origin>(Decode(Bytes('O').U64(0x55).Str("node_a").str()));
  EXPECT_EQ(origin.commit_lsn, 0x55u);
  EXPECT_EQ(origin.name, "node_a");

  auto message = std::get<Message>(
      Decode(Bytes('M').U8(1).U64(0x66).Str("app").U32(3).Raw(std::string("x\0y", 3)).str()));
  EXPECT_EQ(message.flags, 1);
  EXPECT_EQ(message.prefix, "app");
  EXPECT_EQ(message.content, std::string("x\0y", 3));
}

TEST(PgOutput, EveryTruncationOfAValidMessageIsAnError) {
  const std::string messages[] = {
      Bytes('B').U64(1).U64(2).U32(3).str(),
      Bytes('C').U8(0).U64(1).U64(2).U64(3).str(),
      Bytes('R')
          .U32(1)
          .Str("public")
          .Str("outbox")
          .U8('d')
          .U16(1)
          .U8(0)
          .Str("c")
          .U32(25)
          .U32(0)
          .str(),
      Bytes('I').U32(1).U8('N').U16(2).U8('n').Text("abc").str(),
      Bytes('U').U32(1).U8('O').U16(1).Text("a").U8('N').U16(1).Text("b").str(),
      Bytes('D').U32(1).U8('K').U16(1).Text("a").str(),
      Bytes('T').U32(1).U8(0).U32(9).str(),
      Bytes('Y').U32(1).Str("s").Str("t").str(),
      Bytes('O').U64(1).Str("o").str(),
      Bytes('M').U8(0).U64(1).Str("p").U32(2).Raw("zz").str(),
  };
  for (const auto& full : messages) {
    EXPECT_NO_THROW(Decode(full)) << full[0];
    for (std::size_t n = 0; n < full.size(); ++n) {
      EXPECT_THROW(Decode(full.substr(0, n)), DecodeError) << full[0] << " cut to " << n;
    }
    EXPECT_THROW(Decode(full + "x"), DecodeError) << full[0] << " with a trailing byte";
  }
}

TEST(PgOutput, RejectsMalformedInput) {
  EXPECT_THROW(Decode(""), DecodeError);
  EXPECT_THROW(Decode("Z"), DecodeError);                                     // unknown type
  EXPECT_THROW(Decode(Bytes('S').U32(1).U8(1).str()), DecodeError);           // stream start (v2)
  EXPECT_THROW(Decode(Bytes('I').U32(1).U8('X').U16(0).str()), DecodeError);  // not 'N'
  EXPECT_THROW(Decode(Bytes('I').U32(1).U8('N').U16(1).U8('q').str()), DecodeError);  // kind
  // A negative or huge length never reads past the message.
  EXPECT_THROW(Decode(Bytes('I').U32(1).U8('N').U16(1).U8('t').U32(0x80000000).str()), DecodeError);
  EXPECT_THROW(Decode(Bytes('I').U32(1).U8('N').U16(1).U8('t').U32(0x7FFFFFFF).Raw("ab").str()),
               DecodeError);
  EXPECT_THROW(Decode(Bytes('T').U32(0xFFFFFFFF).U8(0).str()), DecodeError);
  EXPECT_THROW(Decode(Bytes('R').U32(1).Raw("no-nul").str()), DecodeError);
  EXPECT_THROW(Decode(Bytes('D').U32(1).U8('N').U16(0).str()), DecodeError);
  try {
    Decode(Bytes('B').U64(1).str());
    FAIL();
  } catch (const DecodeError& e) {
    EXPECT_NE(std::string(e.what()).find("truncated"), std::string::npos) << e.what();
  }
}

TEST(Lsn, FormatsAndParsesLikePostgres) {
  EXPECT_EQ(FormatLsn(0), "0/0");
  EXPECT_EQ(FormatLsn(0x16B3748), "0/16B3748");
  EXPECT_EQ(FormatLsn(0x1'0000'00A0), "1/A0");
  EXPECT_EQ(ParseLsn("1/A0"), 0x1'0000'00A0u);
  EXPECT_EQ(ParseLsn("FFFFFFFF/FFFFFFFF"), ~std::uint64_t{0});
  EXPECT_EQ(ParseLsn("0/16b3748"), 0x16B3748u);
  for (const char* bad : {"", "/", "1/", "/1", "1", "1/2/3", "x/1", "100000000/0", "1 /2"}) {
    EXPECT_THROW(ParseLsn(bad), std::invalid_argument) << bad;
  }
}

}  // namespace
}  // namespace shopcqrs::infra::pg
