"""Admission over Redis: one Lua script per request, shared by every API instance.

The decisions are those of `infra.admission_memory.MemoryAdmission` (the contract suite runs
the same tests over both). Rate windows live under `{prefix}:rl:` (not projections, never in a
replay dump); the hold is recorded with the read store's own op interpreter, so admission and
the projector write byte-identical hold records.
"""

from __future__ import annotations

from typing import Any

from commands.admission import Admission, AdmissionRequest, RateState, Verdict
from domain.json_codec import json_bytes, parse_json
from infra.read_store_redis import LUA_APPLY_OPS, RedisReadStore, encode_op
from projections.ops import CloseHold

# ARGV[1] = "{prefix}:rm:", ARGV[2] = "{prefix}:rl:", ARGV[3] = JSON request (integers as strings),
# ARGV[4] = the replay fence key, ARGV[5] = the set of revoked key ids
_LUA_ADMIT = (
    LUA_APPLY_OPS
    + r"""
local rl = ARGV[2]
pryv_init(ARGV[1], '')
local r = cjson.decode(ARGV[3])
local fence = tonumber(redis.call('GET', ARGV[4]) or '0')
if fence > 0 then
  -- the read models are a replay in progress (Redis lost its data): a half-replayed balance
  -- shows early credit without later debits or holds, so nothing is admitted until it is done
  local at = tonumber(redis.call('HGET', pryv_phys('pos:balance'), 'position') or '0')
  if at < fence then return cjson.encode({v = 'rebuilding', retry = 1}) end
  redis.call('DEL', ARGV[4])
end
local now = tonumber(r.now_s)
local WINDOW = 60

local function num(v, default)
  if v == false or v == nil or v == '' then return default end
  return tonumber(v)
end

local function window(name)
  local k = rl .. r.key_id .. ':' .. name
  local flat = redis.call('HGETALL', k)
  local buckets, sum = {}, 0
  for i = 1, #flat, 2 do
    local s, v = tonumber(flat[i]), tonumber(flat[i + 1])
    if s <= now - WINDOW then
      redis.call('HDEL', k, flat[i])
    else
      buckets[s] = v
      sum = sum + v
    end
  end
  return k, buckets, sum
end

local function sorted_seconds(buckets)
  local seconds = {}
  for s, _ in pairs(buckets) do table.insert(seconds, s) end
  table.sort(seconds)
  return seconds
end

local function retry_after(buckets, excess)
  local freed = 0
  for _, s in ipairs(sorted_seconds(buckets)) do
    freed = freed + buckets[s]
    if freed >= excess then return math.max(s + WINDOW - now, 1) end
  end
  return WINDOW
end

local function state(limit, buckets, sum)
  local newest = nil
  for s, v in pairs(buckets) do
    if v > 0 and (newest == nil or s > newest) then newest = s end
  end
  local reset = 0
  if newest ~= nil then reset = math.max(newest + WINDOW - now, 0) end
  return {limit, math.max(limit - sum, 0), reset}
end

local function answer(verdict, extra)
  extra = extra or {}
  extra.v = verdict
  return cjson.encode(extra)
end

local key = pryv_phys(r.key_record_key)
local fields = redis.call(
  'HMGET', key, 'status', 'expires_epoch', 'models', 'secret_hash', 'previous_hash',
  'previous_expires_epoch')
if not fields[1] then return answer('unknown_key') end
local expires = num(fields[2], 0)
if fields[1] ~= 'active' or (expires > 0 and expires <= now) then return answer('inactive') end
if redis.call('SISMEMBER', ARGV[5], r.key_id) == 1 then return answer('inactive') end
if r.secret_hash ~= '' and fields[4] and fields[4] ~= r.secret_hash then
  -- a rolled key: its previous secret is admitted only until the grace period ends
  if fields[5] ~= r.secret_hash or num(fields[6], 0) <= now then return answer('inactive') end
end
local precheck = r.precheck == '1'
local counting = precheck or r.count == '1'
-- From here on the key is known: every answer carries its rate-limit state (the headers).
local limits = redis.call('HMGET', pryv_phys(r.limits_key), 'rpm', 'tpm', 'monthly_budget_micros')
local rpm_limit = num(limits[1], tonumber(r.default_rpm))
local tpm_limit = num(limits[2], tonumber(r.default_tpm))
local rpm_key, rpm, rpm_used = window('rpm')
local tpm_key, tpm, tpm_used = window('tpm')
local tokens = tonumber(r.tokens)

local function refused(verdict, retry, extra)
  extra = extra or {}
  extra.rpm = state(rpm_limit, rpm, rpm_used)
  extra.tpm = state(tpm_limit, tpm, tpm_used)
  extra.retry = retry
  return answer(verdict, extra)
end

if r.model ~= '' and fields[3] and fields[3] ~= '' and fields[3] ~= '[]' then
  local allowed = false
  for _, m in ipairs(cjson.decode(fields[3])) do
    if m == r.model then allowed = true break end
  end
  if not allowed then return refused('model_not_allowed') end
end
if redis.call('EXISTS', pryv_phys(r.hold[2])) == 1 then return refused('duplicate') end

if counting and rpm_used + 1 > rpm_limit then
  return refused('rpm', retry_after(rpm, rpm_used + 1 - rpm_limit))
end
if tpm_used + tokens > tpm_limit then
  if tokens > tpm_limit then return refused('tpm', WINDOW) end
  return refused('tpm', retry_after(tpm, tpm_used + tokens - tpm_limit))
end

local amount = tonumber(r.hold[6])
local budget = num(limits[3], -1)
if budget >= 0 then
  local spent = num(redis.call('HGET', pryv_phys(r.spend_key), 'micros'), 0)
  local held = num(redis.call('HGET', pryv_phys(r.key_held_key), 'held'), 0)
  if spent + held + amount > budget then return refused('budget') end
end
local bal = redis.call('HMGET', pryv_phys(r.balance_key), 'credited', 'debited', 'held')
local available = num(bal[1], 0) - num(bal[2], 0) - num(bal[3], 0)
if available < amount then
  return refused('credits', nil, {avail = string.format('%.0f', available)})
end

local second = tostring(now)
if counting then
  redis.call('HINCRBY', rpm_key, second, 1)
  redis.call('EXPIRE', rpm_key, WINDOW * 2)
  rpm[now] = (rpm[now] or 0) + 1
  rpm_used = rpm_used + 1
end
if precheck then
  return answer('admitted', {
    rpm = state(rpm_limit, rpm, rpm_used),
    tpm = state(tpm_limit, tpm, tpm_used),
    avail = string.format('%.0f', available),
  })
end
pryv_apply_ops({r.hold})
redis.call('HINCRBY', tpm_key, second, r.tokens)
redis.call('EXPIRE', tpm_key, WINDOW * 2)
tpm[now] = (tpm[now] or 0) + tokens
return answer('admitted', {
  rpm = state(rpm_limit, rpm, rpm_used),
  tpm = state(tpm_limit, tpm, tpm_used + tokens),
  avail = string.format('%.0f', available - amount),
})
"""
)

# KEYS[1] = the key's TPM window; ARGV[1] = second, ARGV[2] = delta
_LUA_CORRECT = r"""
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then
  local v = redis.call('HINCRBY', KEYS[1], ARGV[1], ARGV[2])
  if v < 0 then redis.call('HSET', KEYS[1], ARGV[1], 0) end
end
return 0
"""


def _rate(raw: list[int] | None) -> RateState | None:
    return None if raw is None else RateState(int(raw[0]), int(raw[1]), int(raw[2]))


class RedisAdmission:
    def __init__(self, store: RedisReadStore) -> None:
        self._store = store
        self._rm = f"{store.prefix}:rm:"
        self._rl = f"{store.prefix}:rl:"
        self._revoked = f"{store.prefix}:revoked"  # admission state: not a read model
        self._admit = store.client.register_script(_LUA_ADMIT)
        self._correct = store.client.register_script(_LUA_CORRECT)

    async def admit(self, request: AdmissionRequest) -> Admission:
        return await self._decide(request, precheck=False)

    async def precheck(self, request: AdmissionRequest) -> Admission:
        return await self._decide(request, precheck=True)

    async def mark_revoked(self, key_id: str) -> None:
        await self._store.client.sadd(self._revoked, key_id)

    async def is_revoked(self, key_id: str) -> bool:
        return bool(await self._store.client.sismember(self._revoked, key_id))

    async def _decide(self, request: AdmissionRequest, *, precheck: bool) -> Admission:
        payload: dict[str, Any] = {
            "key_id": request.key_id,
            "key_record_key": request.key_record_key,
            "limits_key": request.limits_key,
            "spend_key": request.spend_key,
            "key_held_key": request.key_held_key,
            "balance_key": request.balance_key,
            "model": request.model,
            "hold": encode_op(request.hold),
            "tokens": str(request.estimated_tokens),
            "now_s": str(request.now_s),
            "default_rpm": str(request.default_rpm),
            "default_tpm": str(request.default_tpm),
            "precheck": "1" if precheck else "0",
            "count": "1" if request.count_request else "0",
            "secret_hash": request.secret_hash,
        }
        raw = await self._admit(
            args=[self._rm, self._rl, json_bytes(payload), self._store.fence_key, self._revoked]
        )
        doc = parse_json(raw)
        return Admission(
            verdict=Verdict(doc["v"]),
            rpm=_rate(doc.get("rpm")),
            tpm=_rate(doc.get("tpm")),
            retry_after_seconds=doc.get("retry"),
            available_micros=int(doc["avail"]) if "avail" in doc else None,
        )

    async def release(self, close: CloseHold) -> None:
        await self._store.apply_ops_atomically([close])

    async def correct_tokens(self, key_id: str, admitted_at_s: int, delta: int) -> None:
        if delta:
            await self._correct(keys=[f"{self._rl}{key_id}:tpm"], args=[admitted_at_s, delta])
