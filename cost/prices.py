"""Price lines: the committed snapshot, or the Azure Retail Prices API read at run time.

The API (https://learn.microsoft.com/rest/api/cost-management/retail-prices/azure-retail-prices) is
public: `GET https://prices.azure.com/api/retail/prices?currencyCode='USD'&$filter=...` answers
`{"BillingCurrency", "CustomerEntityId", "CustomerEntityType", "Items": [...], "NextPageLink",
"Count"}`, 100 items a page, the next page at `NextPageLink` (null on the last). Each item carries
`retailPrice`, `unitOfMeasure`, `currencyCode`, `armRegionName`, `meterId`, `meterName`,
`productName`, `skuName`, `serviceName`, `tierMinimumUnits`, `effectiveStartDate`, `type`. Filter
values are case-sensitive from API version 2023-01-01-preview on.
"""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SNAPSHOT = Path(__file__).resolve().parent / "prices.json"
RETAIL_PRICES = "https://prices.azure.com/api/retail/prices"
MAX_PAGES = 20


@dataclass(frozen=True)
class PriceLine:
    """One price: what it is for, per which unit, in which currency and region, from where."""

    key: str
    meter: str
    unit: str
    price: float
    currency: str
    region: str | None
    source: str


@dataclass(frozen=True)
class Prices:
    """The lines an estimate is priced with, by key; `origin` says where they came from."""

    lines: Mapping[str, PriceLine]
    origin: str

    def get(self, key: str) -> PriceLine | None:
        """The line, or None when there is none (the estimate then says it is not priced)."""
        return self.lines.get(key)


def _line(key: str, item: Mapping[str, Any], source: str) -> PriceLine:
    return PriceLine(
        key=key,
        meter=f"{item['productName']} | {item['meterName']}",
        unit=str(item["unitOfMeasure"]),
        price=float(item["retailPrice"]),
        currency=str(item["currencyCode"]),
        region=item.get("armRegionName"),
        source=source,
    )


def load_snapshot(path: Path = SNAPSHOT) -> Prices:
    """The committed snapshot."""
    document = json.loads(path.read_text())
    lines = {key: _line(key, item, str(item["source"])) for key, item in document["lines"].items()}
    return Prices(lines, f"snapshot {path.name} (each line's region and currency as its source gave it)")


Fetch = Callable[[str], bytes]
"""GET a URL, return the body (replaceable in tests)."""


def _urllib_fetch(url: str) -> bytes:
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return bytes(response.read())


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def query_url(item: Mapping[str, Any], region: str, currency: str, base: str = RETAIL_PRICES) -> str:
    """The Retail Prices API query for one snapshot line, in `region` (Global lines stay Global)."""
    clauses = [f"serviceName eq {_quote(item['serviceName'])}", f"meterName eq {_quote(item['meterName'])}"]
    clauses.append(f"productName eq {_quote(item['productName'])}")
    if item.get("skuName"):
        clauses.append(f"skuName eq {_quote(item['skuName'])}")
    if item.get("armRegionName") != "Global":
        clauses.append(f"armRegionName eq {_quote(region)}")
    clauses.append("priceType eq 'Consumption'")
    query = urllib.parse.urlencode({"currencyCode": _quote(currency), "$filter": " and ".join(clauses)})
    return f"{base}?{query}"


def _items(url: str, fetch: Fetch) -> list[dict[str, Any]]:
    """Every item of a query, following NextPageLink."""
    items: list[dict[str, Any]] = []
    for _ in range(MAX_PAGES):
        page = json.loads(fetch(url))
        if not isinstance(page, dict) or not isinstance(page.get("Items"), list):
            raise ValueError(f"the Retail Prices API answered without an Items list: {str(page)[:200]}")
        items += [item for item in page["Items"] if isinstance(item, dict)]
        url = page.get("NextPageLink") or ""
        if not url:
            return items
    raise ValueError(f"the Retail Prices API kept paging past {MAX_PAGES} pages")


def _paid(items: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The line to price with: the paid tier (highest `tierMinimumUnits`), not a free one."""
    priced = [item for item in items if "Free" not in str(item.get("meterName", ""))]
    return max(priced, key=lambda item: float(item.get("tierMinimumUnits") or 0), default=None)


def load_live(
    region: str,
    currency: str = "USD",
    fetch: Fetch = _urllib_fetch,
    snapshot: Path = SNAPSHOT,
    base: str = RETAIL_PRICES,
) -> Prices:
    """Every snapshot line read again from the Retail Prices API for `region` and `currency`;
    a line the API has no item for is left out (the estimate says it is not priced)."""
    document = json.loads(snapshot.read_text())
    lines: dict[str, PriceLine] = {}
    for key, item in document["lines"].items():
        url = query_url(item, region, currency, base)
        found = _paid(_items(url, fetch))
        if found is not None:
            lines[key] = _line(key, found, f"Retail Prices API, meterId {found.get('meterId')}")
    return Prices(lines, f"Azure Retail Prices API, {region}, {currency}")
