"""`cost import FILE`: usage recorded elsewhere, streamed in batches, idempotent by request id.

Formats (auto-detected):
- `elfctl`: `elfctl cost report --by request --json` output (its "rows" are streamed), a JSON list
  of api_usage rows, or JSON lines;
- `spendlogs-csv`: LiteLLM proxy's `LiteLLM_SpendLogs` table exported with
  `\\copy "LiteLLM_SpendLogs" to FILE csv header`;
- `spendlogs-json`: the JSON list LiteLLM proxy's `/spend/logs` endpoint returns.
Every row is read: a good one is imported, a bad one (unreadable JSON, a missing or wrong field, a
value out of range, bytes that are not UTF-8, a field over 128 KiB) is reported with its line and
field and skipped. A non-empty file of which no row is good fails (exit 2). With `strict` the first
bad row fails the import and nothing of it stays: the file is checked whole first, then recorded in
short transactions all the same (import_batches: undone by its id if it fails on the way), so a long
import never holds the store's write lock for long.
"""

from __future__ import annotations

import csv
import io
import json
import marshal
import re
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from elfctl.domain.clock import iso
from elfctl.domain.pricing import usd_to_nano
from elfctl.domain.usage import REQUIRED, UsageRow, parse_iso, row_problem
from elfctl.errors import ElfError, InputError, OperationFailed
from elfctl.ports import Store
from elfctl.services.cost import import_batches, ledger

FORMATS = ("auto", "elfctl", "spendlogs-csv", "spendlogs-json")
BATCH = import_batches.BATCH
MAX_FIELD = 128 * 1024  # a CSV field or a JSON row larger than this is a bad row
NEEDS = {
    "elfctl": ", ".join(REQUIRED),
    "spendlogs-csv": "request_id, spend, startTime, model and a team (metadata.user_api_key_team_alias or team_id)",
}
NEEDS["spendlogs-json"] = NEEDS["spendlogs-csv"]


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
    import_id: str | None = None  # a strict import's id (api_usage.import_id of the rows it added)


_REPORT_ROWS = re.compile(r'\{\s*"by"\s*:\s*"request"\s*,.*?"rows"\s*:\s*\[', re.S)


def _json_items(f: io.TextIOBase) -> Iterator[tuple[int, Any]]:
    """Stream the items of a top-level JSON list (or JSON lines) with their starting line numbers,
    holding one item at a time. An item that is not valid JSON is yielded as a BadRow and reading
    goes on at the next line."""
    dec = json.JSONDecoder()
    buf, line, pos = "", 1, 0

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

    def next_line() -> None:
        nonlocal pos, line
        while "\n" not in buf[pos:] and fill():
            pass
        end = buf.find("\n", pos)
        pos = len(buf) if end < 0 else end + 1
        line += 1

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
        if pos >= len(buf) or (in_list and buf[pos] == "]"):
            return
        start_line = line
        while True:
            try:
                obj, end = dec.raw_decode(buf, pos)
                break
            except json.JSONDecodeError as exc:
                # A real error, not a row cut at the buffer's end: JSON lines hold a row on one line,
                # and an error well before the end is not one (a cut string reports its start).
                real = (not in_list and "\n" in buf[pos:]) or (
                    exc.pos < len(buf) - 8 and not exc.msg.startswith("Unterminated string"))
                if not real and len(buf) - pos > MAX_FIELD:  # stop reading ahead: bad either way
                    obj, end = BadRow(f"the row is larger than {MAX_FIELD // 1024} KiB"), None
                    break
                if real or not fill():
                    obj, end = BadRow(f"not valid JSON ({exc.msg})"), None
                    break
        if end is None:
            yield start_line, obj
            next_line()
            continue
        big = end - pos > MAX_FIELD
        line += buf.count("\n", pos, end)
        pos = end
        yield start_line, BadRow(f"the row is larger than {MAX_FIELD // 1024} KiB") if big else obj


def _elfctl_row(obj: Any) -> UsageRow:
    if not isinstance(obj, dict):
        raise BadRow(f"a row must be an object, got {type(obj).__name__}")
    known = {k: v for k, v in obj.items() if k in UsageRow.__dataclass_fields__ and k != "reservation_id"}
    for k in REQUIRED:
        if known.get(k) in (None, ""):
            raise BadRow(f"missing {k}")
    known["ts"] = _ts(known["ts"], "ts")
    known["priced"] = bool(known.get("priced", True))
    known["source"] = "import:elfctl"
    return UsageRow(**known)


def _ts(value: Any, name: str) -> str:
    try:
        return iso(parse_iso(value))
    except (TypeError, ValueError, OverflowError, AttributeError):
        raise BadRow(f"{name} {value!r} is not an ISO-8601 time (e.g. 2026-03-01T10:00:00Z)") from None


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
    if not d.get("model"):
        raise BadRow("missing model")
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
    except (ArithmeticError, ValueError, TypeError):  # decimal.InvalidOperation is an ArithmeticError
        raise BadRow(f"spend {d.get('spend')!r} is not an amount in USD") from None
    ts = _ts(str(d.get("startTime") or "").replace(" ", "T"), "startTime")
    model = d.get("model")
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
    """Every row of the file with its line number: a UsageRow fit for the ledger, or a BadRow."""
    for line, item in (_csv_items(f) if fmt == "spendlogs-csv" else _json_items(f)):
        if not isinstance(item, BadRow):
            try:
                item = _elfctl_row(item) if fmt == "elfctl" else _spendlog_row(_mapping(item), fmt)
                problem = row_problem(item)
                if problem:
                    raise BadRow(problem)
            except BadRow as exc:
                item = exc
        yield line, item


def _mapping(item: Any) -> dict:
    if not isinstance(item, dict):
        raise BadRow(f"a row must be an object, got {type(item).__name__}")
    return item


def _csv_items(f) -> Iterator[tuple[int, dict | BadRow]]:
    reader = csv.DictReader(f)
    try:
        header = reader.fieldnames or []
    except csv.Error as exc:
        raise InputError(f"not a LiteLLM_SpendLogs CSV: its header cannot be read ({exc})", hint=_EXPORT) from None
    missing = {"request_id", "spend", "startTime", "model"} - set(header)
    if missing:
        raise InputError(f"not a LiteLLM_SpendLogs CSV: missing column(s) {', '.join(sorted(missing))}", hint=_EXPORT)
    while True:
        try:
            d = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:  # e.g. a NUL byte, or a field past csv's own (larger) limit
            yield reader.line_num, BadRow(f"not readable as CSV ({exc})")
            continue
        big = next((k for k, v in d.items() if isinstance(v, str) and len(v) > MAX_FIELD), None)
        if big is not None:
            yield reader.line_num, BadRow(f"{big} is larger than {MAX_FIELD // 1024} KiB")
        elif None in d or any(v is None for v in d.values()):
            yield reader.line_num, BadRow(f"has {len(header) + len(d.get(None) or [])} fields, not {len(header)}")
        else:
            yield reader.line_num, d


_EXPORT = 'export with \\copy "LiteLLM_SpendLogs" to FILE csv header'


def detect(path: Path) -> str:
    with open(path, encoding="utf-8", errors="surrogateescape") as f:
        head = f.read(4096).lstrip()
    if not head:
        raise InputError(f"{path}: file is empty", hint="export some usage first")
    if head[0] not in "[{":
        return "spendlogs-csv"
    return "spendlogs-json" if '"startTime"' in head or '"spend"' in head else "elfctl"


@contextmanager
def _spool() -> Iterator[IO[bytes]]:
    """A temporary file for a strict import's checked rows; unlinked at once, so gone even on kill -9."""
    try:
        f = tempfile.TemporaryFile(prefix="elfctl-import-")
    except OSError as exc:
        raise _spool_error(exc) from None
    with f:
        yield f


def _spool_error(exc: OSError) -> OperationFailed:
    where = tempfile.gettempdir()
    return OperationFailed(f"cannot keep the checked rows in {where} ({exc.strerror or exc}); nothing was imported",
                           hint=f"free space in {where}, or point TMPDIR at a folder with room")


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
    import_batches.recover(store)  # a strict import whose process died leaves nothing behind
    imp: import_batches.StrictImport | None = None

    def read(record: Callable[[list[UsageRow]], int]) -> None:
        """Every row of the file counted, good ones handed to `record` in batches."""
        batch: list[UsageRow] = []

        def flush() -> None:
            n = record(batch)
            res.imported += n
            res.duplicates += len(batch) - n
            batch.clear()
            if progress:
                progress(res.read)

        # Bytes that are not UTF-8 become lone surrogates, which row_problem() refuses row by row.
        with open(path, encoding="utf-8", errors="surrogateescape", newline="") as f:
            for line, row in _rows(f, fmt):
                if isinstance(row, BadRow):
                    res.bad_count += 1
                    msg = f"line {line}: {row}"
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
                    flush()
        if batch:
            flush()

    limit = csv.field_size_limit()
    csv.field_size_limit(max(limit, 16 * MAX_FIELD))  # read big fields whole, to refuse them by name
    try:
        if strict:
            with _spool() as spool:
                # First the file is checked whole, nothing written: a bad row anywhere fails it here.
                # Its good rows are spooled (marshal reads back ~10x faster than the file parses).
                def check(rows: list[UsageRow]) -> int:
                    try:
                        marshal.dump([tuple(r.__dict__.values()) for r in rows], spool)
                    except OSError as exc:
                        raise _spool_error(exc) from None
                    return 0

                read(check)
                res.imported = res.duplicates = 0
                spool.seek(0)
                imp = import_batches.begin(store, str(path))
                for _ in range(0, res.read, BATCH):  # the spool holds the batches `read` made
                    rows = [UsageRow(*t) for t in marshal.load(spool)]
                    n = imp.record(rows)
                    res.imported += n
                    res.duplicates += len(rows) - n
                    if progress:
                        progress(imp.recorded)
                imp.done()
            res.import_id = imp.id
        else:
            pacer = import_batches.Pacer(store)

            def record(rows: list[UsageRow]) -> int:
                with pacer.transaction() as tx:
                    return ledger.record_in(tx, rows)

            read(record)
    except BaseException as exc:  # Ctrl-C too: a strict import leaves nothing
        if imp is not None:
            import_batches.undo_quietly(imp, exc)
        elif not strict and isinstance(exc, ElfError):  # the batches before the failure stay: say so
            exc.message += (f" (the import stopped after reading {res.read + res.bad_count:,} rows; {res.imported:,} were "
                            "imported before it, and importing again skips them)")
        raise
    finally:
        csv.field_size_limit(limit)
    if res.read == 0 and res.bad_count:
        first = res.bad[0]["error"]
        raise InputError(
            f"{path}: no row imported, all {res.bad_count:,} are bad (first: {first})",
            hint=f"a row in the {fmt} format needs {NEEDS[fmt]}; see `elfctl cost import --help`",
        )
    return res
