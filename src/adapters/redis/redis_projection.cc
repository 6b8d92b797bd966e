#include "adapters/redis/redis_projection.h"

#include <charconv>
#include <chrono>
#include <map>
#include <thread>

#include <fmt/format.h>
#include <boost/json.hpp>

#include "adapters/events/event_codec.h"
#include "adapters/events/footprint.h"
#include "domain/events.h"
#include "domain/time.h"

namespace shopcqrs::adapters::redis {

using namespace infra::redis;

namespace json = boost::json;

namespace {

// KEYS[1]  the checkpoint hash
// ARGV[1]  key prefix
// ARGV[2..4]  expected stored checkpoint: xid, position, bound (decimal text; "0" when none)
// ARGV[5..7]  the new checkpoint
// ARGV[8]  the events, a JSON array prepared by RedisProjection::Apply (see EventJson)
// ARGV[9]  the dead-letter changes (cqrs::DeadLetterChanges), a JSON object: pass, the skipped
//          versions [{agg, id, v}] (applied without effect, for the version guard); park, the
//          events to park
//          [{position, entry}] (entry: the JSON text kept); release, the id of an aggregate whose
//          parked events are deleted ("" for none); skip, {position, entry} to add to the skip
//          list (or false)
// KEYS[2]  the dead letters hash (position -> entry), KEYS[3] the skip list hash
// Returns the number of events applied (redelivered ones are skipped).
// Error replies: "SHOPCQRS_CHECKPOINT_MOVED ..." (retryable), "SHOPCQRS_VERSION_GAP ..." and
// "SHOPCQRS_UNKNOWN_EVENT ..." (fatal). Every error is raised before the first write.
// Numbers stay exact: every value is below 2^53 and integers are written with %d.
//
// Every write is absolute (SET, HSET of a computed value, SADD, ZADD of a computed score), never
// a relative increment: a script's effects reach the AOF as one MULTI/EXEC block, and a block
// that a crash cut short can be replayed partly on top of a later one (see
// RedisProjection::LoadCheckpoint); an absolute write replayed twice has one effect.
constexpr std::string_view kApplyScript = R"lua(
local P = ARGV[1]
local NULL = cjson.null

local function order_key(id) return P .. 'order:' .. id end
local function customer_key(id) return P .. 'customer:' .. id end
local function customer_orders_key(id) return P .. 'customer_orders:' .. id end
local function product_key(id) return P .. 'product:' .. id end

-- 1. The checkpoint must be the one the projector believes it is.
local stored = redis.call('HMGET', KEYS[1], 'xid', 'position', 'bound')
for i = 1, 3 do
  if (stored[i] or '0') ~= ARGV[i + 1] then
    return redis.error_reply(string.format(
      'SHOPCQRS_CHECKPOINT_MOVED stored %s/%s/%s, expected %s/%s/%s', stored[1] or '0',
      stored[2] or '0', stored[3] or '0', ARGV[2], ARGV[3], ARGV[4]))
  end
end

local events = cjson.decode(ARGV[8])

-- Order documents are read once, changed in memory and written back at the end.
local orders, dirty_orders = {}, {}
local function load_order(id)
  if orders[id] == nil then
    local text = redis.call('GET', order_key(id))
    orders[id] = text and cjson.decode(text) or false
  end
  return orders[id] or nil
end

-- 2. The event handlers (they change the in-memory state and write absolute values only).
local function int(n) return string.format('%d', n) end
local function opt(s) if s == nil or s == '' then return NULL end return s end
local changed_customers, changed_products = {}, {}

-- Product sales are read once, summed in memory and written back as absolute values.
local sales = {}
local function add_sales(lines, sign)
  for _, l in ipairs(lines) do
    local s = sales[l.product_id]
    if s == nil then
      local p = redis.call('HMGET', product_key(l.product_id), 'units_sold', 'revenue_cents')
      s = { units = tonumber(p[1] or '0'), revenue = tonumber(p[2] or '0') }
      sales[l.product_id] = s
    end
    s.units = s.units + sign * l.quantity
    s.revenue = s.revenue + sign * l.line_total_cents
    changed_products[l.product_id] = true
  end
end

local on = {}
function on.CustomerRegistered(e)
  redis.call('HSET', customer_key(e.id), 'name', e.name, 'email', e.email, 'version', int(e.v))
  changed_customers[e.id] = true
end
on.CustomerDetailsChanged = on.CustomerRegistered
function on.ProductAdded(e)
  redis.call('HSET', product_key(e.id), 'sku', e.sku, 'name', e.name, 'version', int(e.v))
  changed_products[e.id] = true
end
function on.ProductPriceChanged(e)
  redis.call('HSET', product_key(e.id), 'version', int(e.v))
end
on.ProductRestocked = on.ProductPriceChanged
function on.OrderPlaced(e)
  local c = redis.call('HMGET', customer_key(e.customer_id), 'name', 'email')
  orders[e.id] = {
    id = e.id, customer_id = e.customer_id, customer_name = c[1] or NULL,
    customer_email = c[2] or NULL, status = 'placed', lines = e.lines,
    item_count = e.item_count, total_cents = e.total_cents, placed_at = e.at,
    paid_at = NULL, shipped_at = NULL, delivered_at = NULL, cancelled_at = NULL,
    payment_reference = NULL, tracking_number = NULL, cancel_reason = NULL, version = 0 }
  redis.call('SADD', customer_orders_key(e.customer_id), e.id)
end
function on.OrderPaid(e, o)
  o.status, o.paid_at, o.payment_reference = 'paid', e.at, e.payment_reference
  add_sales(e.lines, 1)
end
function on.OrderShipped(e, o)
  o.status, o.shipped_at, o.tracking_number = 'shipped', e.at, e.tracking_number
end
function on.OrderDelivered(e, o)
  o.status, o.delivered_at = 'delivered', e.at
end
function on.OrderCancelled(e, o)
  o.status, o.cancelled_at, o.cancel_reason = 'cancelled', e.at, opt(e.reason)
  if e.was_paid then add_sales(e.lines, -1) end
end

-- Skipped events' versions count as applied without their effect: the guard lets the
-- aggregate's later events through.
local changes = cjson.decode(ARGV[9])
local passed = {}
for _, p in ipairs(changes.pass) do passed[p.agg .. ':' .. p.id .. ':' .. int(p.v)] = true end

-- 3. Version guard and event types, before anything is written.
local versions, apply = {}, {}
for i, e in ipairs(events) do
  local k = e.agg .. ':' .. e.id
  local v = versions[k]
  if v == nil then
    if e.agg == 'Order' then
      local o = load_order(e.id)
      v = o and o.version or 0
    else
      local key = e.agg == 'Customer' and customer_key(e.id) or product_key(e.id)
      v = tonumber(redis.call('HGET', key, 'version') or '0')
    end
  end
  if e.v > v + 1 then
    while passed[k .. ':' .. int(v + 1)] do v = v + 1 end
  end
  if e.v <= v then
    apply[i] = false
  elseif on[e.type] == nil then
    return redis.error_reply('SHOPCQRS_UNKNOWN_EVENT ' .. e.type)
  elseif e.v == v + 1 and (v > 0 or e.first) then
    apply[i] = true
    v = e.v
  else
    return redis.error_reply(string.format(
      'SHOPCQRS_VERSION_GAP %s %s is at version %d but event %s has version %d',
      e.agg, e.id, v, e.type, e.v))
  end
  versions[k] = v
end

-- 4. Apply.
local applied = 0
for i, e in ipairs(events) do
  if apply[i] then
    local handler = on[e.type]
    if e.agg == 'Order' then
      handler(e, load_order(e.id))
      orders[e.id].version = e.v
      dirty_orders[e.id] = true
    else
      handler(e)
    end
    applied = applied + 1
  end
end

-- Orders carry their customer's current details.
for id in pairs(changed_customers) do
  local c = redis.call('HMGET', customer_key(id), 'name', 'email')
  for _, order_id in ipairs(redis.call('SMEMBERS', customer_orders_key(id))) do
    local o = load_order(order_id)
    if o then
      o.customer_name, o.customer_email = c[1] or NULL, c[2] or NULL
      dirty_orders[order_id] = true
    end
  end
end

-- The API order view, fields in the documented order.
local function s(v) if v == nil or v == NULL then return 'null' end return cjson.encode(v) end
local function encode_order(o)
  local lines = {}
  for i, l in ipairs(o.lines) do
    lines[i] = '{"product_id":' .. s(l.product_id) .. ',"sku":' .. s(l.sku) ..
      ',"product_name":' .. s(l.product_name) .. ',"quantity":' .. int(l.quantity) ..
      ',"unit_price_cents":' .. int(l.unit_price_cents) ..
      ',"line_total_cents":' .. int(l.line_total_cents) .. '}'
  end
  return '{"id":' .. s(o.id) .. ',"customer_id":' .. s(o.customer_id) ..
    ',"customer_name":' .. s(o.customer_name) .. ',"customer_email":' .. s(o.customer_email) ..
    ',"status":' .. s(o.status) .. ',"lines":[' .. table.concat(lines, ',') .. ']' ..
    ',"item_count":' .. int(o.item_count) .. ',"total_cents":' .. int(o.total_cents) ..
    ',"placed_at":' .. s(o.placed_at) .. ',"paid_at":' .. s(o.paid_at) ..
    ',"shipped_at":' .. s(o.shipped_at) .. ',"delivered_at":' .. s(o.delivered_at) ..
    ',"cancelled_at":' .. s(o.cancelled_at) .. ',"payment_reference":' ..
    s(o.payment_reference) .. ',"tracking_number":' .. s(o.tracking_number) ..
    ',"cancel_reason":' .. s(o.cancel_reason) .. ',"version":' .. int(o.version) .. '}'
end
for id in pairs(dirty_orders) do
  redis.call('SET', order_key(id), encode_order(orders[id]))
end

for id, s in pairs(sales) do
  redis.call('HSET', product_key(id), 'units_sold', int(s.units), 'revenue_cents', int(s.revenue))
end

-- Top sellers: every added product, scored -units_sold (exact decimal text, no float trip).
for id in pairs(changed_products) do
  local p = redis.call('HMGET', product_key(id), 'version', 'units_sold')
  if tonumber(p[1] or '0') > 0 then
    local units = p[2] or '0'
    local score = units:sub(1, 1) == '-' and units:sub(2) or ('-' .. units)
    redis.call('ZADD', P .. 'top_products', score, id)
  end
end

-- Dead letters, in the same script as the checkpoint.
for _, p in ipairs(changes.park) do
  redis.call('HSETNX', KEYS[2], int(p.position), p.entry)
end
if changes.release ~= '' then
  local all = redis.call('HGETALL', KEYS[2])
  for i = 1, #all, 2 do
    if cjson.decode(all[i + 1]).aggregate_id == changes.release then
      redis.call('HDEL', KEYS[2], all[i])
    end
  end
end
if changes.skip then redis.call('HSETNX', KEYS[3], int(changes.skip.position), changes.skip.entry) end

local events_before = tonumber(redis.call('HGET', KEYS[1], 'events') or '0')
redis.call('HSET', KEYS[1], 'xid', ARGV[5], 'position', ARGV[6], 'bound', ARGV[7], 'events',
           int(events_before + applied))
if #changes.park > 0 or changes.release ~= '' then
  local generation = tonumber(redis.call('HGET', KEYS[1], 'dead_letter_generation') or '0')
  redis.call('HSET', KEYS[1], 'dead_letter_generation', int(generation + 1))
end
return applied
)lua";

const RedisScript& ApplyScript() {
  static const RedisScript script{std::string(kApplyScript)};
  return script;
}

json::array LinesJson(const std::vector<domain::PlacedLine>& lines) {
  json::array out;
  for (const auto& l : lines) {
    out.push_back(json::object{{"product_id", l.product_id.ToString()},
                               {"sku", l.sku},
                               {"product_name", l.product_name},
                               {"quantity", l.quantity},
                               {"unit_price_cents", l.unit_price_cents},
                               {"line_total_cents", l.line_total_cents()}});
  }
  return out;
}

// One event as the script reads it: {agg, id, v, type, at, first, ...payload fields}.
json::object EventJson(const cqrs::StoredEvent& stored, const domain::DomainEvent& event) {
  json::object out{{"agg", stored.envelope.aggregate_type},
                   {"id", stored.envelope.aggregate_id},
                   {"v", event.aggregate_version},
                   {"type", domain::EventTypeName(event.payload)},  // as upcast
                   {"at", domain::FormatTimestamp(event.occurred_at)}};
  std::visit(
      [&](const auto& e) {
        using T = std::decay_t<decltype(e)>;
        out["first"] = std::is_same_v<T, domain::CustomerRegistered> ||
                       std::is_same_v<T, domain::ProductAdded> ||
                       std::is_same_v<T, domain::OrderPlaced>;
        if constexpr (requires { e.name; }) out["name"] = e.name;
        if constexpr (requires { e.email; }) out["email"] = e.email;
        if constexpr (requires { e.sku; }) out["sku"] = e.sku;
        if constexpr (requires { e.lines; }) out["lines"] = LinesJson(e.lines);
        if constexpr (std::is_same_v<T, domain::OrderPlaced>) {
          std::int64_t items = 0;
          for (const auto& l : e.lines) items += l.quantity;
          out["customer_id"] = e.customer_id.ToString();
          out["item_count"] = items;
          out["total_cents"] = e.total_cents;
        }
        if constexpr (requires { e.payment_reference; }) {
          out["payment_reference"] = e.payment_reference;
        }
        if constexpr (requires { e.tracking_number; }) out["tracking_number"] = e.tracking_number;
        if constexpr (std::is_same_v<T, domain::OrderCancelled>) {
          out["reason"] = e.reason;
          out["was_paid"] = e.previous_status == domain::OrderStatus::kPaid;
        }
      },
      event.payload);
  return out;
}

template <class T>
T ParseNumber(const RedisReply& reply, std::string_view field) {
  if (reply.IsNil()) return 0;
  T value = 0;
  const auto& s = reply.str;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc() || ptr != s.data() + s.size()) {
    throw RedisError(fmt::format("redis checkpoint field {} is not a number: '{}'", field, s));
  }
  return value;
}

}  // namespace

std::map<std::string, std::string> InfoFields(std::string_view text) {
  std::map<std::string, std::string> fields;
  while (!text.empty()) {
    auto end = text.find('\n');
    auto line = text.substr(0, end);
    text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty() || line.front() == '#') continue;
    const auto colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    fields.emplace(std::string(line.substr(0, colon)), std::string(line.substr(colon + 1)));
  }
  return fields;
}

void CompactAppendOnlyFile(RedisClient& client, std::chrono::milliseconds timeout) {
  auto persistence = [&] { return InfoFields(client.Command({"INFO", "persistence"}).str); };
  if (persistence()["aof_enabled"] != "1") return;
  try {
    client.Command({"BGREWRITEAOF"});
  } catch (const RedisReplyError& error) {
    // One already running (started after the restart too) does the same job.
    if (std::string_view(error.what()).find("in progress") == std::string_view::npos) throw;
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    auto fields = persistence();
    if (fields["aof_rewrite_in_progress"] == "0" && fields["aof_rewrite_scheduled"] == "0") {
      if (fields["aof_last_bgrewrite_status"] != "ok") {
        throw RedisError("redis AOF rewrite failed: aof_last_bgrewrite_status " +
                         fields["aof_last_bgrewrite_status"]);
      }
      return;
    }
    if (std::chrono::steady_clock::now() > deadline) {
      throw RedisError("redis AOF rewrite did not finish in time");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

std::string_view ApplyScriptSource() { return kApplyScript; }

RedisProjection::RedisProjection(Options options)
    : options_(std::move(options)), keys_{options_.key_prefix}, client_(options_.endpoint) {}

RedisProjection::~RedisProjection() = default;

void RedisProjection::Reset() { client_.Disconnect(); }

void RedisProjection::EnsureCompactedSinceRestart() {
  const auto info = InfoFields(client_.Command({"INFO", "server"}).str);
  const auto run_id = info.find("run_id");
  if (run_id == info.end()) throw RedisError("INFO server has no run_id");
  if (run_id->second != compacted_run_id_) {
    CompactAppendOnlyFile(client_);
    compacted_run_id_ = run_id->second;
  }
  verified_connection_ = client_.Connections();
}

cqrs::Checkpoint RedisProjection::LoadCheckpoint() {
  auto reply =
      client_.Command({"HMGET", keys_.Checkpoint(options_.name), "xid", "position", "bound"});
  if (reply.elements.size() != 3) throw RedisError("unexpected HMGET reply for the checkpoint");
  cqrs::Checkpoint checkpoint{ParseNumber<std::uint64_t>(reply.elements[0], "xid"),
                              ParseNumber<std::int64_t>(reply.elements[1], "position"),
                              ParseNumber<std::uint64_t>(reply.elements[2], "bound")};
  return checkpoint;
}

std::int64_t RedisProjection::EventsApplied() {
  auto reply = client_.Command({"HGET", keys_.Checkpoint(options_.name), "events"});
  return ParseNumber<std::int64_t>(reply, "events");
}

void RedisProjection::Apply(const cqrs::Checkpoint& from,
                            const std::vector<cqrs::StoredEvent>& events,
                            const cqrs::Checkpoint& checkpoint) {
  ApplyWithDeadLetters(from, events, checkpoint, {});
}

namespace {

std::int64_t Ms(cqrs::TimePoint t) { return t.time_since_epoch().count(); }
cqrs::TimePoint AtMs(std::int64_t ms) { return cqrs::TimePoint{std::chrono::milliseconds(ms)}; }

// A dead letter's entry: the event, why it was parked, the rows it would change.
std::string EntryJson(const cqrs::ParkedEvent& parked) {
  const auto& e = parked.event;
  json::object entry{{"position", e.position},
                     {"xid", std::to_string(e.xid)},
                     {"aggregate_type", e.envelope.aggregate_type},
                     {"aggregate_id", e.envelope.aggregate_id},
                     {"event_id", e.envelope.event_id},
                     {"type", e.envelope.type},
                     {"schema_version", e.envelope.schema_version},
                     {"aggregate_version", e.envelope.aggregate_version},
                     {"occurred_at_ms", Ms(e.envelope.occurred_at)},
                     {"committed_at_ms", Ms(e.committed_at)},
                     {"payload", e.envelope.payload},
                     {"error", parked.error},
                     {"parked_at_ms", Ms(std::chrono::time_point_cast<std::chrono::milliseconds>(
                                          std::chrono::system_clock::now()))}};
  auto& keys = entry["keys"].emplace_array();
  for (const auto& k : parked.keys) keys.emplace_back(k);
  return json::serialize(entry);
}

std::string ChangesJson(const cqrs::DeadLetterChanges& changes) {
  json::object out;
  auto& pass = out["pass"].emplace_array();
  for (const auto& p : changes.pass) {
    pass.push_back(
        json::object{{"agg", p.aggregate.type}, {"id", p.aggregate.id}, {"v", p.version}});
  }
  auto& park = out["park"].emplace_array();
  for (const auto& p : changes.park) {
    park.push_back(json::object{{"position", p.event.position}, {"entry", EntryJson(p)}});
  }
  out["release"] = changes.release ? changes.release->id : std::string();
  if (const auto& skip = changes.skip) {
    json::object entry{
        {"position", skip->position},         {"xid", std::to_string(skip->xid)},
        {"event_id", skip->event_id},         {"aggregate_type", skip->aggregate.type},
        {"aggregate_id", skip->aggregate.id}, {"aggregate_version", skip->aggregate_version},
        {"skipped_by", skip->skipped_by},     {"skipped_at_ms", Ms(skip->skipped_at)}};
    out["skip"] = json::object{{"position", skip->position}, {"entry", json::serialize(entry)}};
  } else {
    out["skip"] = false;
  }
  return json::serialize(out);
}

// The script refused the data (deterministic), not the server's state.
bool IsDeterministic(std::string_view what) {
  for (std::string_view mark : {"SHOPCQRS_VERSION_GAP", "SHOPCQRS_UNKNOWN_EVENT", "WRONGTYPE",
                                "user_script", "ERR Error running script"}) {
    if (what.find(mark) != std::string_view::npos) return true;
  }
  return false;
}

std::uint64_t XidOf(const json::value& v) { return std::stoull(std::string(v.as_string())); }

}  // namespace

std::vector<std::string> RedisProjection::Footprint(const cqrs::StoredEvent& event) {
  return events::Footprint(event);
}

std::vector<std::string> RedisProjection::Entries(const std::string& key) {
  auto reply = client_.Command({"HVALS", key});
  std::vector<std::string> entries;
  for (const auto& element : reply.elements) entries.push_back(element.str);
  return entries;
}

std::vector<cqrs::DeadLetter> RedisProjection::LoadDeadLetters() {
  std::vector<json::object> rows;
  for (const auto& text : Entries(DeadLettersKey())) rows.push_back(json::parse(text).as_object());
  std::ranges::sort(rows, {}, [](const json::object& o) { return o.at("position").as_int64(); });
  std::vector<cqrs::DeadLetter> letters;
  std::map<std::string, std::size_t> index;
  for (const auto& o : rows) {
    const std::string id(o.at("aggregate_id").as_string());
    auto [it, first] = index.try_emplace(id, letters.size());
    if (first) {
      cqrs::DeadLetter letter;
      letter.aggregate = {std::string(o.at("aggregate_type").as_string()), id};
      letter.first_position = o.at("position").as_int64();
      letter.first_xid = XidOf(o.at("xid"));
      letter.error = std::string(o.at("error").as_string());
      letter.parked_at = AtMs(o.at("parked_at_ms").as_int64());
      letters.push_back(std::move(letter));
    }
    auto& letter = letters[it->second];
    ++letter.events;
    for (const auto& k : o.at("keys").as_array()) {
      std::string key(k.as_string());
      if (std::ranges::find(letter.keys, key) == letter.keys.end()) letter.keys.push_back(key);
    }
  }
  return letters;
}

std::vector<cqrs::StoredEvent> RedisProjection::LoadParkedEvents(
    const cqrs::AggregateKey& aggregate) {
  std::vector<cqrs::StoredEvent> events;
  for (const auto& text : Entries(DeadLettersKey())) {
    const auto o = json::parse(text).as_object();
    if (o.at("aggregate_id").as_string() != aggregate.id) continue;
    cqrs::StoredEvent e;
    e.position = o.at("position").as_int64();
    e.xid = XidOf(o.at("xid"));
    e.envelope.event_id = std::string(o.at("event_id").as_string());
    e.envelope.type = std::string(o.at("type").as_string());
    e.envelope.schema_version = static_cast<int>(o.at("schema_version").as_int64());
    e.envelope.aggregate_type = std::string(o.at("aggregate_type").as_string());
    e.envelope.aggregate_id = std::string(o.at("aggregate_id").as_string());
    e.envelope.aggregate_version = o.at("aggregate_version").as_int64();
    e.envelope.occurred_at = AtMs(o.at("occurred_at_ms").as_int64());
    e.committed_at = AtMs(o.at("committed_at_ms").as_int64());
    e.envelope.payload = std::string(o.at("payload").as_string());
    events.push_back(std::move(e));
  }
  std::ranges::sort(events, {}, &cqrs::StoredEvent::position);
  return events;
}

std::vector<cqrs::SkipRecord> RedisProjection::LoadSkips() {
  std::vector<cqrs::SkipRecord> skips;
  for (const auto& text : Entries(SkipsKey())) {
    const auto o = json::parse(text).as_object();
    skips.push_back({o.at("position").as_int64(),
                     XidOf(o.at("xid")),
                     std::string(o.at("event_id").as_string()),
                     {std::string(o.at("aggregate_type").as_string()),
                      std::string(o.at("aggregate_id").as_string())},
                     o.at("aggregate_version").as_int64(),
                     std::string(o.at("skipped_by").as_string()),
                     AtMs(o.at("skipped_at_ms").as_int64())});
  }
  std::ranges::sort(skips, {}, &cqrs::SkipRecord::position);
  return skips;
}

std::uint64_t RedisProjection::DeadLetterGeneration() {
  auto reply = client_.Command({"HGET", keys_.Checkpoint(options_.name), "dead_letter_generation"});
  return ParseNumber<std::uint64_t>(reply, "dead_letter_generation");
}

void RedisProjection::ApplyWithDeadLetters(const cqrs::Checkpoint& from,
                                           const std::vector<cqrs::StoredEvent>& events,
                                           const cqrs::Checkpoint& checkpoint,
                                           const cqrs::DeadLetterChanges& changes) {
  json::array batch;
  batch.reserve(events.size());
  for (const auto& stored : events) {
    batch.push_back(EventJson(stored, events::DecodeStored(stored)));
  }
  // A new connection may mean a restarted server: its AOF is compacted before the first write.
  if (!client_.IsConnected() || verified_connection_ != client_.Connections()) {
    EnsureCompactedSinceRestart();
  }
  try {
    client_.Eval(ApplyScript(), {keys_.Checkpoint(options_.name), DeadLettersKey(), SkipsKey()},
                 {keys_.prefix, std::to_string(from.xid), std::to_string(from.position),
                  std::to_string(from.bound), std::to_string(checkpoint.xid),
                  std::to_string(checkpoint.position), std::to_string(checkpoint.bound),
                  json::serialize(batch), ChangesJson(changes)});
  } catch (const RedisReplyError& error) {
    const std::string_view what = error.what();
    if (IsDeterministic(what)) {
      throw cqrs::DeterministicApplyError(fmt::format("redis projection: {}", what));
    }
    throw;  // e.g. SHOPCQRS_CHECKPOINT_MOVED or LOADING: the projector reloads and retries
  }
}

}  // namespace shopcqrs::adapters::redis
