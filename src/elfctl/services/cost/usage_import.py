"""`cost import FILE`: usage recorded elsewhere, streamed in batches, idempotent by request id.

Formats (auto-detected):
- `elfctl`: `elfctl cost report --by request --json` output (its "rows" are streamed), a JSON list
  of api_usage rows, or JSON lines;
- `spendlogs-csv`: LiteLLM proxy's `LiteLLM_SpendLogs` table exported with
  `\\copy "LiteLLM_SpendLogs" to FILE csv header`;
- `spendlogs-json`: the JSON list LiteLLM proxy's `/spend/logs` endpoint returns.
A row that cannot be read is reported with its line number and skipped; with `strict` the whole
import runs in one transaction and the first bad row rolls it all back.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from elfctl.domain.clock import iso
from elfctl.domain.pricing import usd_to_nano
from elfctl.domain.usage import UsageRow, parse_iso
from elfctl.errors import InputError
from elfctl.ports import Store
from elfctl.services.cost import ledger

FORMATS = ("auto", "elfctl", "spendlogs-csv", "spendlogs-json")
BATCH = 2000


class BadRow(Exception):
    pass


@dataclass
class ImportResult:
    file: str
    format: str
    read: int = 0
    imported: int = 0
    duplicates: int = 0
    bad: list[dict] = field(default_factory=list)  # {"line", "error"} (first 100)
    bad_count: int = 0


_REPORT_ROWS = re.compile(r'\{\s*"by"\s*:\s*"request"\s*,.*?"rows"\s*:\s*\[', re.S)


def _json_items(f: io.TextIOBase) -> Iterator[tuple[int, Any]]:
    """Stream the items of a top-level JSON list (or JSON lines) with their starting line numbers,
    holding one item at a time."""
    dec = json.JSONDecoder()
    buf, line, pos = "", 1, 0
    eof = False

    def fill() -> bool:
        nonlocal buf, pos
        chunk = f.read(1 << 16)
        if not chunk:
            return False
        buf = buf[pos:] + chunk
        pos = 0
        return True

    def skip_ws(extra: str = "") -> None:
        nonlocal pos, line
        while True:
            while pos < len(buf) and (buf[pos].isspace() or buf[pos] in extra):
                if buf[pos] == "\n":
                    line += 1
                pos += 1
            if pos < len(buf) or not fill():
                return

    fill()
    skip_ws()
    if buf.startswith("{", pos):
        # `cost report --by request --json`: {"by": "request", ..., "rows": [...], ...}; stream "rows".
        m = _REPORT_ROWS.match(buf, pos)
        if m:
            line += buf.count("\n", pos, m.end())
            pos = m.end() - 1
    in_list = pos < len(buf) and buf[pos] == "["
    if in_list:
        pos += 1
    while True:
        skip_ws("," if in_list else "")
        if pos >= len(buf):
            return
        if in_list and buf[pos] == "]":
            return
        start_line = line
        while True:
            try:
                obj, end = dec.raw_decode(buf, pos)
                break
            except json.JSONDecodeError as exc:
                if eof or not fill():
                    eof = True
                    raise BadRow(f"line {start_line}: not valid JSON ({exc.msg})") from None
        line += buf.count("\n", pos, end)
        pos = end
        yield start_line, obj


def _elfctl_row(obj: Any) -> UsageRow:
    if not isinstance(obj, dict):
        raise BadRow("not an object")
    known = {k: v for k, v in obj.items() if k in UsageRow.__dataclass_fields__ and k != "reservation_id"}
    for k in ("request_id", "ts", "team", "requested_model", "model"):
        if not known.get(k):
            raise BadRow(f"missing {k}")
    for k in (
        "prompt_tokens",
        "completion_tokens",
        "cached_tokens",
        "cache_write_tokens",
        "reasoning_tokens",
        "cost_nanousd",
    ):
        if k in known and (isinstance(known[k], bool) or not isinstance(known[k], int)):
            raise BadRow(f"{k} must be an integer, got {known[k]!r}")
    known["ts"] = iso(parse_iso(str(known["ts"])))
    known["priced"] = bool(known.get("priced", True))
    known["source"] = "import:elfctl"
    return UsageRow(**known)


def _int(value: Any, name: str) -> int:
    if value in (None, ""):
        return 0
    try:
        return int(value)
    except (TypeError, ValueError):
        raise BadRow(f"{name} {value!r} is not a whole number") from None


def _spendlog_row(d: dict, fmt: str) -> UsageRow:
    rid = d.get("request_id")
    if not rid:
        raise BadRow("missing request_id")
    meta = d.get("metadata") or {}
    if isinstance(meta, str):
        try:
            meta = json.loads(meta) if meta.strip() else {}
        except ValueError:
            raise BadRow("metadata is not JSON") from None
    team = (meta.get("user_api_key_team_alias") if isinstance(meta, dict) else None) or d.get("team_id")
    if not team:
        raise BadRow("no team (metadata.user_api_key_team_alias or team_id)")
    try:
        cost = usd_to_nano(d.get("spend") if d.get("spend") not in (None, "") else 0)
        ts = iso(parse_iso(str(d.get("startTime") or "").replace(" ", "T")))
    except Exception:  # noqa: BLE001
        raise BadRow(f"bad spend {d.get('spend')!r} or startTime {d.get('startTime')!r}") from None
    model = d.get("model") or "unknown"
    provider = d.get("custom_llm_provider") or None
    status = (d.get("status") or "success").lower()
    return UsageRow(
        request_id=str(rid),
        ts=ts,
        team=str(team),
        requested_model=model,
        model=model,
        provider=provider,
        agent=(meta.get("user_api_key_alias") if isinstance(meta, dict) else None),
        prompt_tokens=_int(d.get("prompt_tokens"), "prompt_tokens"),
        completion_tokens=_int(d.get("completion_tokens"), "completion_tokens"),
        cost_nanousd=cost,
        priced=True,
        price_version="litellm-proxy",
        outcome="ok" if status == "success" else "error",
        source=f"import:{fmt}",
    )


def _rows(f, fmt: str) -> Iterator[tuple[int, UsageRow | BadRow]]:
    if fmt == "spendlogs-csv":
        reader = csv.DictReader(f)
        missing = {"request_id", "spend", "startTime", "model"} - set(reader.fieldnames or [])
        if missing:
            raise InputError(
                f"not a LiteLLM_SpendLogs CSV: missing column(s) {', '.join(sorted(missing))}",
                hint='export with \\copy "LiteLLM_SpendLogs" to FILE csv header',
            )
        for d in reader:
            line = reader.line_num
            try:
                yield line, _spendlog_row(d, fmt)
            except BadRow as exc:
                yield line, exc
        return
    items = _json_items(f)
    while True:
        try:
            line, obj = next(items)
        except StopIteration:
            return
        except BadRow as exc:  # unreadable JSON: nothing after it can be trusted
            yield 0, exc
            return
        try:
            yield line, (_elfctl_row(obj) if fmt == "elfctl" else _spendlog_row(obj, fmt))
        except BadRow as exc:
            yield line, exc


def detect(path: Path) -> str:
    with open(path, encoding="utf-8") as f:
        head = f.read(4096).lstrip()
    if not head:
        raise InputError(f"{path}: file is empty", hint="export some usage first")
    if head[0] not in "[{":
        return "spendlogs-csv"
    return "spendlogs-json" if '"startTime"' in head or '"spend"' in head else "elfctl"


def import_file(
    store: Store,
    path: Path,
    fmt: str = "auto",
    strict: bool = False,
    progress: Callable[[int], None] | None = None,
) -> ImportResult:
    if fmt not in FORMATS:
        raise InputError(f"--format {fmt!r} is unknown", hint=f"use one of {', '.join(FORMATS)}")
    if not path.is_file():
        raise InputError(f"{path}: no such file", hint="check the path")
    fmt = detect(path) if fmt == "auto" else fmt
    res = ImportResult(str(path), fmt)
    batch: list[UsageRow] = []

    def flush(tx) -> None:
        n = ledger.record_in(tx, batch) if tx is not None else ledger.record(store, batch)
        res.imported += n
        res.duplicates += len(batch) - n
        batch.clear()
        if progress:
            progress(res.read)

    def run(tx) -> None:
        with open(path, encoding="utf-8", newline="") as f:
            for line, row in _rows(f, fmt):
                if isinstance(row, BadRow):
                    res.bad_count += 1
                    msg = str(row) if str(row).startswith("line ") else f"line {line}: {row}"
                    if len(res.bad) < 100:
                        res.bad.append({"line": line, "error": msg})
                    if strict:
                        raise InputError(
                            f"{path}: {msg}", hint="fix or remove that row; nothing was imported (--strict)"
                        )
                    continue
                res.read += 1
                batch.append(row)
                if len(batch) >= BATCH:
                    flush(tx)
        if batch:
            flush(tx)

    if strict:
        with store.transaction() as tx:
            run(tx)
    else:
        run(None)
    return res
