"""Usage analytics: spend, requests and tokens per UTC day, env, key and model, from the usage
projection's breakdown, filtered and totalled, as JSON rows or CSV (the dashboard's Usage page
and `GET /api/v1/usage`)."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from domain.errors import PryvError
from domain.money import micros_to_usd
from projections import keys, usage
from projections.store import ReadStore

MAX_DAYS = 366
CSV_COLUMNS = (
    "date",
    "env",
    "key_id",
    "key_name",
    "model",
    "requests",
    "tokens_in",
    "tokens_out",
    "spend_usd",
)


@dataclass(frozen=True)
class UsageFilter:
    start: date
    end: date  # inclusive
    env: str | None = None
    key_id: str | None = None
    model: str | None = None

    @classmethod
    def parse(
        cls,
        start: str | None,
        end: str | None,
        *,
        today: date,
        env: str | None = None,
        key_id: str | None = None,
        model: str | None = None,
    ) -> UsageFilter:
        """`from`/`to` as YYYY-MM-DD (default: the last 30 days to today), at most 366 days."""
        try:
            last = date.fromisoformat(end) if end else today
            first = date.fromisoformat(start) if start else last - timedelta(days=29)
        except ValueError as exc:
            raise PryvError("from and to are dates, YYYY-MM-DD", code="invalid_params") from exc
        if first > last:
            raise PryvError("from is after to", code="invalid_params", param="from")
        if (last - first).days + 1 > MAX_DAYS:
            raise PryvError(f"at most {MAX_DAYS} days at once", code="invalid_params", param="from")
        if env not in (None, "", "live", "test"):
            raise PryvError("env is live or test", code="invalid_params", param="env")
        return cls(first, last, env or None, key_id or None, model or None)

    def days(self) -> list[str]:
        count = (self.end - self.start).days + 1
        return [(self.start + timedelta(days=n)).isoformat() for n in range(count)]


class UsageQuery(BaseModel):
    """The query string both usage routes take (`from`, `to`, `env`, `keyId`, `model`,
    `format`), as one model so the API and the dashboard cannot drift apart. Other query
    parameters are left alone (wallet fields may travel in the query string on GET)."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    start: str | None = Field(default=None, alias="from", max_length=10)
    end: str | None = Field(default=None, alias="to", max_length=10)
    env: str | None = Field(default=None, max_length=4)
    key_id: str | None = Field(default=None, alias="keyId", max_length=64)
    model: str | None = Field(default=None, max_length=200)
    format: Literal["json", "csv"] = "json"

    def filter(self, today: date) -> UsageFilter:
        return UsageFilter.parse(
            self.start, self.end, today=today, env=self.env, key_id=self.key_id, model=self.model
        )


@dataclass(frozen=True)
class UsageRow:
    day: str
    env: str
    key_id: str
    model: str
    requests: int
    tokens_in: int
    tokens_out: int
    micros: int

    def to_dict(self, key_names: dict[str, str]) -> dict[str, Any]:
        return {
            "date": self.day,
            "env": self.env,
            "keyId": self.key_id or None,
            "keyName": key_names.get(self.key_id),
            "model": self.model,
            "requests": self.requests,
            "tokensIn": self.tokens_in,
            "tokensOut": self.tokens_out,
            "spendMicros": self.micros,
            "spendUsd": micros_to_usd(self.micros),
        }


async def usage_rows(store: ReadStore, account_id: str, wanted: UsageFilter) -> list[UsageRow]:
    """The breakdown rows in the period, oldest day first, filtered."""
    rows = []
    for day in wanted.days():
        sums: dict[tuple[str, str, str], dict[str, int]] = defaultdict(dict)
        for name, value in (await store.get_fields(usage.breakdown_key(account_id, day))).items():
            parts = usage.split_breakdown_field(name)
            if parts is None:
                continue
            env, key_id, model, metric = parts
            if (wanted.env and env != wanted.env) or (wanted.model and model != wanted.model):
                continue
            if wanted.key_id and key_id != wanted.key_id:
                continue
            sums[(env, key_id, model)][metric] = int(value)
        for (env, key_id, model), metrics in sorted(sums.items()):
            rows.append(
                UsageRow(
                    day,
                    env,
                    key_id,
                    model,
                    metrics.get("requests", 0),
                    metrics.get("tokens_in", 0),
                    metrics.get("tokens_out", 0),
                    metrics.get("micros", 0),
                )
            )
    return rows


def usage_document(
    rows: list[UsageRow], wanted: UsageFilter, key_names: dict[str, str]
) -> dict[str, Any]:
    total = sum(r.micros for r in rows)
    return {
        "object": "usage_report",
        "from": wanted.start.isoformat(),
        "to": wanted.end.isoformat(),
        "data": [r.to_dict(key_names) for r in rows],
        "totals": {
            "requests": sum(r.requests for r in rows),
            "tokensIn": sum(r.tokens_in for r in rows),
            "tokensOut": sum(r.tokens_out for r in rows),
            "spendMicros": total,
            "spendUsd": micros_to_usd(total),
        },
    }


def usage_csv(rows: list[UsageRow], key_names: dict[str, str]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for r in rows:
        writer.writerow(
            [
                r.day,
                r.env,
                r.key_id,
                key_names.get(r.key_id, ""),
                r.model,
                r.requests,
                r.tokens_in,
                r.tokens_out,
                micros_to_usd(r.micros),
            ]
        )
    return out.getvalue()


async def usage_report(
    store: ReadStore, account_id: str, wanted: UsageFilter, *, as_csv: bool
) -> dict[str, Any] | str:
    """The account's usage in the period: a document, or CSV text; keys named by their name."""
    names = {r.key_id: r.name for _pos, r in await keys.list_keys(store, account_id, limit=1000)}
    rows = await usage_rows(store, account_id, wanted)
    return usage_csv(rows, names) if as_csv else usage_document(rows, wanted, names)
