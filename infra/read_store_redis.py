"""Redis read store for production: the same semantics as MemoryReadStore, shared by N processes.

Every batch of projection writes is applied by ONE Lua script call, so readers on any instance
never see half an event (e.g. a settlement's `debited` without its `held` release) and the
position guard is checked and advanced in the same atomic step as the writes it guards.

Keys: a read-model key lives at `{prefix}:rm:{owner}.{generation}:{logical_key}` (the owning
projection and the generation it is served from, see projections/keyspace.py); positions are
the logical keys `pos:{projection}` (hash: position, bus_seq). The served generation of each
projection is the hash `{prefix}:rm:gens`; scripts resolve it inside Redis, so a rebuild's swap
is atomic for every writer. Other features own other sub-prefixes (`{prefix}:rl:` …);
`dump`/`clear` only ever touch `{prefix}:rm:*`.

Integers cross into Lua as decimal strings: Lua numbers are doubles, and `tostring(1e15)` is
"1e+15", which HINCRBY would reject. Redis parses the strings itself (HINCRBY: int64, ZADD: double).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

import redis.asyncio as redis

from domain.json_codec import json_bytes
from projections.keyspace import SEGMENT_OWNERS, UNOWNED, logical, owner_of
from projections.ops import (
    CloseHold,
    IncrField,
    Op,
    OpenHold,
    ProjectionPosition,
    ProjectionWrite,
    SetFields,
    SetValue,
    SortedAdd,
    SortedRemove,
)
from projections.store import RebuildLease, RebuildLeaseLost


def _lua_table(mapping: Mapping[str, str]) -> str:
    """A Lua table literal of string keys and values (key ownership, from Python's catalog)."""
    items = ", ".join(f"[{json.dumps(k)}] = {json.dumps(v)}" for k, v in sorted(mapping.items()))
    return "{" + items + "}\n"


# The op interpreter, as a Lua chunk other scripts (e.g. admission) concatenate in front of their
# own body. It defines `pryv_apply_ops(rm, ops)`: `rm` is the key prefix "{prefix}:rm:", `ops` the
# decoded output of `encode_ops` (arrays, integers as decimal strings).
LUA_APPLY_OPS = (
    "local PRYV_OWNERS = "
    + _lua_table(SEGMENT_OWNERS)
    + r"""
local PRYV_RM, PRYV_GENS, PRYV_REBUILDING = nil, {}, false

-- Resolve the served generations once per script call (`into` overrides them: a rebuild
-- writes a new generation). Every key below goes through pryv_phys.
local function pryv_init(rm, into)
  PRYV_RM = rm
  PRYV_GENS = {}
  local flat = redis.call('HGETALL', rm .. 'gens')
  for i = 1, #flat, 2 do PRYV_GENS[flat[i]] = flat[i + 1] end
  PRYV_REBUILDING = into ~= nil and into ~= ''
  if PRYV_REBUILDING then
    for owner, gen in pairs(cjson.decode(into)) do PRYV_GENS[owner] = tostring(gen) end
  end
end

local function pryv_phys(key)
  local segment, rest = string.match(key, '^([^:]*):?(.*)$')
  local owner = PRYV_OWNERS[segment] or '_'
  if segment == 'pos' then owner = rest end
  local gen = '0'
  if owner ~= '_' then gen = PRYV_GENS[owner] or '0' end
  return PRYV_RM .. owner .. '.' .. gen .. ':' .. key
end

local function pryv_neg(s)
  -- negate a decimal string without a trip through doubles; Redis rejects "-0"
  if s == '0' then return '0' end
  if string.sub(s, 1, 1) == '-' then return string.sub(s, 2) end
  return '-' .. s
end

local function pryv_hset(key, flat)
  -- flat = {f1, v1, f2, v2, ...}; unpack in slices to stay below Lua's C stack limit
  local n = #flat
  local i = 1
  while i <= n do
    local j = math.min(i + 199, n)
    redis.call('HSET', key, unpack(flat, i, j))
    i = j + 1
  end
end

local function pryv_apply_ops(ops)
  for _, op in ipairs(ops) do
    local t = op[1]
    if t == 'F' then
      pryv_hset(pryv_phys(op[2]), op[3])
    elseif t == 'I' then
      redis.call('HINCRBY', pryv_phys(op[2]), op[3], op[4])
    elseif t == 'V' then
      redis.call('SET', pryv_phys(op[2]), op[3])
    elseif t == 'Z' then
      redis.call('ZADD', pryv_phys(op[2]), op[3], op[4])
    elseif t == 'R' then
      redis.call('ZREM', pryv_phys(op[2]), op[3])
    elseif t == 'O' then
      -- {'O', hold_key, {counter_key...}, expiry_key, hold_id, amount, expires_epoch, flat_fields}
      local hold = pryv_phys(op[2])
      if redis.call('EXISTS', hold) == 0 then
        pryv_hset(hold, op[8])
        redis.call('HSET', hold, 'amount', op[6])
        for _, counter in ipairs(op[3]) do
          redis.call('HINCRBY', pryv_phys(counter), 'held', op[6])
        end
        redis.call('ZADD', pryv_phys(op[4]), op[7], op[5])
      end
    elseif t == 'C' then
      -- {'C', hold_key, {counter_key...}, expiry_key, hold_id}
      local hold = pryv_phys(op[2])
      if PRYV_REBUILDING then
        -- remember what a generation being rebuilt saw settled: the swap must not carry those
        -- holds over from the served generation (see _LUA_SWAP)
        redis.call('SADD', pryv_phys('holds:settled'), op[5])
      end
      if redis.call('EXISTS', hold) == 1 then
        local amount = redis.call('HGET', hold, 'amount')
        if not amount then
          error('pryv: hold ' .. hold .. ' has no amount')
        end
        redis.call('DEL', hold)
        for _, counter in ipairs(op[3]) do
          redis.call('HINCRBY', pryv_phys(counter), 'held', pryv_neg(amount))
        end
        redis.call('ZREM', pryv_phys(op[4]), op[5])
      end
    else
      error('pryv: unknown op ' .. tostring(t))
    end
  end
end
"""
)

# A rebuild's writes carry its lease token; a token that no longer holds the lease is refused
# inside the same script that would write (fencing: a stalled rebuild cannot write late).
# ARGV[i] = the lease key, ARGV[i + 1] = the token ('' = not fenced)
_LUA_FENCE = r"""
local function pryv_fenced(lease_key, token)
  if token ~= '' and redis.call('HGET', lease_key, 'token') ~= token then
    return redis.error_reply('pryv: rebuild lease lost')
  end
  return nil
end
"""

# ARGV[1] = "{prefix}:rm:", ARGV[2] = JSON [[projection, position, bus_seq, ops], ...],
# ARGV[3] = JSON {projection: generation} to write into instead of the served ones ('' = none),
# ARGV[4] = the rebuild lease key, ARGV[5] = its token ('' = not fenced)
_LUA_APPLY_WRITES = (
    LUA_APPLY_OPS
    + _LUA_FENCE
    + r"""
local lost = pryv_fenced(ARGV[4], ARGV[5])
if lost then return lost end
pryv_init(ARGV[1], ARGV[3])
local applied = 0
for _, w in ipairs(cjson.decode(ARGV[2])) do
  local pos_key = pryv_phys('pos:' .. w[1])
  -- positions are < 2^53, so tonumber is exact
  local current = tonumber(redis.call('HGET', pos_key, 'position') or '0')
  if tonumber(w[2]) > current then
    pryv_apply_ops(w[4])
    redis.call('HSET', pos_key, 'position', w[2], 'bus_seq', w[3])
    applied = applied + 1
  end
end
return applied
"""
)

# ARGV[1] = "{prefix}:rm:", ARGV[2] = JSON ops
_LUA_APPLY_OPS_ONLY = (
    LUA_APPLY_OPS
    + r"""
pryv_init(ARGV[1], '')
pryv_apply_ops(cjson.decode(ARGV[2]))
return 0
"""
)


# Serve `projection` from a rebuilt generation, atomically, once it has caught up with the live
# one. For the balance projection, holds open in the live generation that the new one neither
# has nor saw settled (admission recorded them; their Placed event is not in the new generation
# yet) are carried over with their `held` amounts, so available credit is never overstated
# across the swap. Key names follow projections/balance.py.
# ARGV[1] = "{prefix}:rm:", ARGV[2] = projection, ARGV[3] = new generation,
# ARGV[4] = the rebuild lease key, ARGV[5] = its token ('' = not fenced)
_LUA_SWAP = (
    LUA_APPLY_OPS
    + _LUA_FENCE
    + r"""
local lost = pryv_fenced(ARGV[4], ARGV[5])
if lost then return lost end
local rm, proj, new = ARGV[1], ARGV[2], ARGV[3]
pryv_init(rm, '')
local cur = PRYV_GENS[proj] or '0'
local function in_gen(gen, key) return rm .. proj .. '.' .. gen .. ':' .. key end
local new_pos = in_gen(new, 'pos:' .. proj)
local old_pos = in_gen(cur, 'pos:' .. proj)
if tonumber(redis.call('HGET', new_pos, 'position') or '0')
    < tonumber(redis.call('HGET', old_pos, 'position') or '0') then
  return 0
end
local old_seq = redis.call('HGET', old_pos, 'bus_seq')
if old_seq and redis.call('EXISTS', new_pos) == 1 then
  redis.call('HSET', new_pos, 'bus_seq', old_seq)
end
if proj == 'balance' then
  local expiring = redis.call('ZRANGE', in_gen(cur, 'holds:expiring'), 0, -1, 'WITHSCORES')
  for i = 1, #expiring, 2 do
    local hold_id, expires = expiring[i], expiring[i + 1]
    local old_hold, new_hold = in_gen(cur, 'hold:' .. hold_id), in_gen(new, 'hold:' .. hold_id)
    if redis.call('EXISTS', old_hold) == 1 and redis.call('EXISTS', new_hold) == 0
        and redis.call('SISMEMBER', in_gen(new, 'holds:settled'), hold_id) == 0 then
      local flat = redis.call('HGETALL', old_hold)
      pryv_hset(new_hold, flat)
      local h = {}
      for j = 1, #flat, 2 do h[flat[j]] = flat[j + 1] end
      redis.call('HINCRBY', in_gen(new, 'balance:' .. h.account_id .. ':' .. h.env), 'held',
                 h.amount)
      redis.call('HINCRBY', in_gen(new, 'keyheld:' .. h.key_id), 'held', h.amount)
      redis.call('ZADD', in_gen(new, 'holds:expiring'), expires, hold_id)
    end
  end
end
redis.call('DEL', in_gen(new, 'holds:settled'))
redis.call('HSET', rm .. 'gens', proj, new)
return 1
"""
)


# Unlink some keys of a generation that is not served, if the lease (when fenced) still holds.
# ARGV[1] = gens key, ARGV[2] = projection, ARGV[3] = generation, ARGV[4] = lease key,
# ARGV[5] = token ('' = not fenced), ARGV[6..] = keys
_LUA_DROP = (
    _LUA_FENCE
    + r"""
local lost = pryv_fenced(ARGV[4], ARGV[5])
if lost then return lost end
if (redis.call('HGET', ARGV[1], ARGV[2]) or '0') == ARGV[3] then
  return redis.error_reply('pryv: generation is served')
end
local keys = {}
for i = 6, #ARGV do keys[#keys + 1] = ARGV[i] end
if #keys > 0 then redis.call('UNLINK', unpack(keys)) end
return #keys
"""
)

# The rebuild lease: a hash {token, owner} with a TTL, tokens from a counter that only grows.
# ARGV[1] = lease key, ARGV[2] = counter key, ARGV[3] = owner, ARGV[4] = ttl ms
_LUA_LEASE_ACQUIRE = r"""
if redis.call('EXISTS', ARGV[1]) == 1 then return false end
local token = redis.call('INCR', ARGV[2])
redis.call('HSET', ARGV[1], 'token', token, 'owner', ARGV[3])
redis.call('PEXPIRE', ARGV[1], ARGV[4])
return token
"""
# ARGV[1] = lease key, ARGV[2] = token, ARGV[3] = ttl ms ('' = release)
_LUA_LEASE_RENEW = r"""
if redis.call('HGET', ARGV[1], 'token') ~= ARGV[2] then return 0 end
if ARGV[3] == '' then redis.call('DEL', ARGV[1]) else redis.call('PEXPIRE', ARGV[1], ARGV[3]) end
return 1
"""


def _flat(fields: dict[str, str]) -> list[str]:
    return [item for pair in fields.items() for item in pair]


def encode_op(op: Op) -> list[Any]:
    """One op in the array form `pryv_apply_ops` reads; every integer as a decimal string."""
    if isinstance(op, SetFields):
        return ["F", op.key, _flat(op.fields)]
    if isinstance(op, IncrField):
        return ["I", op.key, op.field, str(op.delta)]
    if isinstance(op, SetValue):
        return ["V", op.key, op.value]
    if isinstance(op, SortedAdd):
        return ["Z", op.key, str(op.score), op.member]
    if isinstance(op, SortedRemove):
        return ["R", op.key, op.member]
    if isinstance(op, OpenHold):
        return [
            "O",
            op.hold_key,
            list(op.counter_keys),
            op.expiry_key,
            op.hold_id,
            str(op.amount),
            str(op.expires_epoch),
            _flat(op.fields),
        ]
    if isinstance(op, CloseHold):
        return ["C", op.hold_key, list(op.counter_keys), op.expiry_key, op.hold_id]
    raise TypeError(f"unknown op {op!r}")  # pragma: no cover - exhaustiveness guard


def encode_ops(ops: Sequence[Op]) -> list[list[Any]]:
    return [encode_op(op) for op in ops]


def _to_json(value: Any) -> bytes:
    # raw UTF-8 instead of \u escapes: cjson passes it through untouched
    return json_bytes(value)


def _text(value: str | bytes) -> str:
    """Decode replies from clients made without decode_responses."""
    return value.decode() if isinstance(value, bytes) else value


def _glob_escape(text: str) -> str:
    """A literal for SCAN MATCH: the prefix must not act as a pattern."""
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


class _ConnectionPool(redis.BlockingConnectionPool):
    """redis-py's pool, minus the deprecation check it wraps around `get_connection`: that
    wrapper inspects the call's arguments on every command (4% of the API process's CPU under
    py-spy, bench/overhead.py), and Pryv never passes the deprecated ones."""

    get_connection = getattr(
        redis.BlockingConnectionPool.get_connection,
        "__wrapped__",
        redis.BlockingConnectionPool.get_connection,
    )


class RedisReadStore:
    """ReadStore over Redis; see the module docstring for the key layout and atomicity."""

    _BATCH = 500  # keys per pipeline / UNLINK in dump and clear
    GENERATIONS_TTL = 1.0  # seconds a process may serve reads from a swapped-out generation

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.client = client
        self.prefix = prefix
        self._client = client
        self._rm = f"{prefix}:rm:"
        self._gens_key = f"{self._rm}gens"
        self.fence_key = f"{prefix}:fence"  # outside rm: not a read model, never in a dump
        self._gens: dict[str, int] = {}
        self._gens_read_at = float("-inf")
        self._apply_writes = client.register_script(_LUA_APPLY_WRITES)
        self._apply_ops = client.register_script(_LUA_APPLY_OPS_ONLY)
        self._swap = client.register_script(_LUA_SWAP)
        self._drop = client.register_script(_LUA_DROP)
        self._lease_acquire = client.register_script(_LUA_LEASE_ACQUIRE)
        self._lease_renew = client.register_script(_LUA_LEASE_RENEW)
        self.lease_key = f"{prefix}:rebuild:lease"  # outside rm: never in a dump
        self._lease_counter = f"{prefix}:rebuild:tokens"

    @classmethod
    def from_url(cls, url: str, prefix: str, max_connections: int = 64) -> RedisReadStore:
        """A client whose pool makes callers wait for a connection (up to 5 s) instead of
        failing: a burst of concurrent requests queues rather than erroring.

        Every call is bounded from inside by socket timeouts, so no caller needs to cancel a
        Redis wait from outside (`asyncio.wait_for`): a cancel that lands while redis-py reads
        a reply can be swallowed and leave the waiter hanging (redis/redis-py#2028)."""
        pool = _ConnectionPool.from_url(
            url,
            decode_responses=True,
            max_connections=max_connections,
            timeout=5,
            socket_timeout=5.0,
            socket_connect_timeout=2.0,
        )
        return cls(redis.Redis.from_pool(pool), prefix)  # the client owns (and closes) the pool

    # --- key mapping -----------------------------------------------------------------------

    async def set_fence(self, position: int) -> None:
        await self._client.set(self.fence_key, str(position))

    async def fence_position(self) -> int:
        raw = await self._client.get(self.fence_key)
        return int(_text(raw)) if raw else 0

    async def generations(self) -> dict[str, int]:
        raw = await self._client.hgetall(self._gens_key)
        self._gens = {_text(k): int(_text(v)) for k, v in raw.items()}
        self._gens_read_at = time.monotonic()
        return dict(self._gens)

    async def _phys(self, key: str, into: Mapping[str, int] | None = None) -> str:
        """Physical name for reads. Generations are re-read at most every GENERATIONS_TTL: after
        a swap a reader may see the previous generation (stale by at most that long, never
        half-built); writers resolve the generation inside their script."""
        if time.monotonic() - self._gens_read_at > self.GENERATIONS_TTL:
            await self.generations()
        owner = owner_of(key)
        generation = 0 if owner == UNOWNED else self._gens.get(owner, 0)
        if into and owner in into:
            generation = into[owner]
        return f"{self._rm}{owner}.{generation}:{key}"

    # --- writes ----------------------------------------------------------------------------

    async def apply(
        self,
        writes: Sequence[ProjectionWrite],
        *,
        into: Mapping[str, int] | None = None,
        fence: int | None = None,
    ) -> int:
        """The whole batch in one script call: all of it is visible at once, or none of it.

        Not chunked on purpose: a batch is one JSON argument (a projector batch of 500 events x 5
        projections is a few hundred KB and runs in milliseconds), and chunks would let readers
        observe a partly applied batch. `into` writes some projections into another generation
        (a rebuild).
        """
        if not writes:
            return 0
        payload = [
            [w.projection, str(w.position), str(w.bus_seq), encode_ops(w.ops)] for w in writes
        ]
        target = _to_json(dict(into)) if into else ""
        args = [self._rm, _to_json(payload), target, *self._fence_args(fence)]
        applied = await self._fenced(self._apply_writes(args=args))
        return int(applied)

    def _fence_args(self, fence: int | None) -> list[str]:
        return [self.lease_key, "" if fence is None else str(fence)]

    @staticmethod
    async def _fenced(call: Any) -> Any:
        try:
            return await call
        except redis.ResponseError as exc:
            if "rebuild lease lost" in str(exc):
                raise RebuildLeaseLost("this rebuild no longer holds the rebuild lease") from None
            if "generation is served" in str(exc):
                raise ValueError("that generation is the one served") from None
            raise

    async def apply_ops_atomically(self, ops: Sequence[Op]) -> None:
        """Ops without a position guard, in one script call (admission records holds this way)."""
        if ops:
            await self._apply_ops(args=[self._rm, _to_json(encode_ops(ops))])

    # --- generations -----------------------------------------------------------------------

    async def swap_generation(
        self, projection: str, generation: int, *, fence: int | None = None
    ) -> bool:
        args = [self._rm, projection, str(generation), *self._fence_args(fence)]
        swapped = bool(await self._fenced(self._swap(args=args)))
        if swapped:
            await self.generations()
        return swapped

    async def drop_generation(
        self, projection: str, generation: int, *, fence: int | None = None
    ) -> int:
        """Each batch is unlinked by a script that re-checks the lease and that the
        generation is not the served one, so a stale rebuild can never drop live data."""
        pattern = _glob_escape(f"{self._rm}{projection}.{generation}:") + "*"
        keys = [_text(k) async for k in self._client.scan_iter(match=pattern, count=1000)]
        head = [self._gens_key, projection, str(generation), *self._fence_args(fence)]
        if not keys:
            await self._fenced(self._drop(args=head))  # still refuses the served generation
        for start in range(0, len(keys), self._BATCH):
            await self._fenced(self._drop(args=[*head, *keys[start : start + self._BATCH]]))
        return len(keys)

    # --- the rebuild lease -------------------------------------------------------------------

    async def acquire_rebuild_lease(self, owner: str, ttl: float) -> RebuildLease | None:
        token = await self._lease_acquire(
            args=[self.lease_key, self._lease_counter, owner, str(int(ttl * 1000))]
        )
        return None if token is None else RebuildLease(int(token), owner, ttl)

    async def renew_rebuild_lease(self, token: int, ttl: float) -> bool:
        args = [self.lease_key, str(token), str(int(ttl * 1000))]
        return bool(await self._lease_renew(args=args))

    async def release_rebuild_lease(self, token: int) -> None:
        await self._lease_renew(args=[self.lease_key, str(token), ""])

    async def rebuild_lease(self) -> RebuildLease | None:
        fields = await self._client.hgetall(self.lease_key)
        if not fields:
            return None
        ttl_ms = await self._client.pttl(self.lease_key)
        return RebuildLease(
            int(_text(fields["token"])), _text(fields["owner"]), max(ttl_ms, 0) / 1000
        )

    # --- reads -----------------------------------------------------------------------------

    async def position(self, projection: str, generation: int | None = None) -> ProjectionPosition:
        into = None if generation is None else {projection: generation}
        raw = await self._client.hgetall(await self._phys("pos:" + projection, into))
        fields = {_text(f): _text(v) for f, v in raw.items()}
        return ProjectionPosition(int(fields.get("position", 0)), int(fields.get("bus_seq", 0)))

    async def get_fields(self, key: str) -> dict[str, str]:
        raw = await self._client.hgetall(await self._phys(key))
        return {_text(f): _text(v) for f, v in raw.items()}

    async def get_value(self, key: str) -> str | None:
        raw = await self._client.get(await self._phys(key))
        return None if raw is None else _text(raw)

    async def sorted_desc(
        self, key: str, *, below: int | None, limit: int
    ) -> list[tuple[int, str]]:
        """Highest scores first, strictly below `below` when given (a `(` bound is exclusive)."""
        if limit <= 0:  # LIMIT 0 -1 would mean "all" to Redis
            return []
        upper = "+inf" if below is None else f"({below}"
        rows: list[Any] = await self._client.zrevrangebyscore(
            await self._phys(key), upper, "-inf", start=0, num=limit, withscores=True
        )
        return [(int(score), _text(member)) for member, score in rows]

    async def sorted_by_score(self, key: str, *, max_score: int, limit: int) -> list[str]:
        if limit <= 0:
            return []
        rows: list[Any] = await self._client.zrangebyscore(
            await self._phys(key), "-inf", max_score, start=0, num=limit
        )
        return [_text(member) for member in rows]

    async def _scan_keys(self) -> list[str]:
        pattern = _glob_escape(self._rm) + "*"
        keys = {_text(k) async for k in self._client.scan_iter(match=pattern, count=1000)}
        return sorted(keys)

    async def dump(self) -> dict[str, Any]:
        """Canonical contents of the served generations, as MemoryReadStore.dump(); positions
        are bookkeeping, left out. Not a snapshot: meant for quiescent stores, read in pages."""
        served = await self.generations()
        keys: list[tuple[str, str]] = []
        for physical_key in await self._scan_keys():
            if physical_key == self._gens_key:
                continue
            owner, generation, key = logical(physical_key[len(self._rm) :])
            if generation == (0 if owner == UNOWNED else served.get(owner, 0)) and not (
                key.startswith("pos:")
            ):
                keys.append((physical_key, key))
        out: dict[str, Any] = {}
        for start in range(0, len(keys), self._BATCH):
            page = keys[start : start + self._BATCH]
            async with self._client.pipeline(transaction=False) as pipe:
                for physical_key, _ in page:
                    pipe.type(physical_key)
                types = [_text(t) for t in await pipe.execute()]
            async with self._client.pipeline(transaction=True) as pipe:
                for (physical_key, _), kind in zip(page, types, strict=True):
                    if kind == "hash":
                        pipe.hgetall(physical_key)
                    elif kind == "string":
                        pipe.get(physical_key)
                    elif kind == "zset":
                        pipe.zrange(physical_key, 0, -1, withscores=True)
                    elif kind == "none":  # deleted since the scan
                        pipe.exists(physical_key)
                    else:
                        raise TypeError(f"unexpected {kind} at read-model key {physical_key}")
                values = await pipe.execute()
            for (_, key), kind, value in zip(page, types, values, strict=True):
                if kind == "hash" and value:
                    out[key] = dict(sorted((_text(f), _text(v)) for f, v in value.items()))
                elif kind == "string" and value is not None:
                    out[key] = _text(value)
                elif kind == "zset" and value:
                    out[key] = [
                        [score, member]
                        for score, member in sorted((int(s), _text(m)) for m, s in value)
                    ]
        return dict(sorted(out.items()))

    async def clear(self) -> None:
        """Delete every read model, position and generation under this prefix (nothing else)."""
        keys = await self._scan_keys()
        for start in range(0, len(keys), self._BATCH):
            await self._client.unlink(*keys[start : start + self._BATCH])
        self._gens, self._gens_read_at = {}, float("-inf")

    async def close(self) -> None:
        await self._client.aclose()
