"""The store over a Supabase project's REST API (PostgREST), through the official `supabase` client.

What it serves: `Rows` (table reads and upserts) and `Functions` (`rpc` into elfctl's database
functions): what the running platform needs, with no database password. Plain SQL (`query`,
`execute`, transactions, advisory locks) has no REST form: those raise one line naming
SUPABASE_DB_URL, the project's database connection, which the commands needing them use instead.

Retries: postgrest-py retries a GET/HEAD by itself up to 3 times on 503/520 or a dropped connection,
sleeping 1, 2 and 4 s (timeouts are not retried): one read could take 4 timeouts plus 7 s. That is
turned off (`postgrest_client_retry=False`), so one store call is bounded by `supabase.timeout_s`;
callers that may retry already have a policy (the ledger's spool replay, elfctl.resilience).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from elfctl.adapters.rows_sql import columns as _columns
from elfctl.adapters.rows_sql import name as _name
from elfctl.adapters.rows_sql import order_terms
from elfctl.errors import (
    Conflict,
    ElfError,
    InputError,
    OperationFailed,
    StoreFull,
    StoreNotMigrated,
    Timeout,
    Unreachable,
)
from elfctl.redact import register_secret, scrub

LOOPBACK = ("127.0.0.1", "localhost", "::1")
DB_URL_HINT = ("set SUPABASE_DB_URL (the project's connection string, Settings > Database)")
MIGRATE_HINT = "run elfctl db migrate (SUPABASE_DB_URL) or paste `elfctl db migrate --print-sql` in the SQL editor"


def check_url(url: str, setting: str) -> str:
    """The project URL, https:// only (http:// only to this machine, for tests). Returns it without a
    trailing slash."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url.rstrip("/")
    if parts.scheme == "http" and parts.hostname in LOOPBACK:
        return url.rstrip("/")
    raise InputError(f"{setting} {url!r} is not an https:// URL: the service key must not travel in clear text",
                     hint="use the project URL from the dashboard, https://<project-ref>.supabase.co")


class RestStore:
    dialect = "rest"

    def __init__(self, url: str, key: str, timeout_s: float = 10.0, url_setting: str = "SUPABASE_URL",
                 key_setting: str = "SUPABASE_KEY", ca_file: str | None = None, max_rows: int = 1000):
        import httpx

        from supabase import ClientOptions, create_client

        self.url = check_url(url, url_setting)
        self.display_url = self.url
        if not key:
            raise InputError(f"{key_setting} is empty: the REST store needs the project's service key",
                             hint="copy the service_role key (Dashboard > Project Settings > API keys)")
        register_secret(key)  # whatever prints later, the key is scrubbed from it
        if key_role(key) in ("anon", "authenticated"):
            # RLS hides every row from these roles without an error: refuse rather than show nothing
            raise InputError(f"{key_setting} is the project's public (anon) key: elfctl needs the service_role key",
                             hint="copy the service_role / secret key (Dashboard > Project Settings > API keys)",
                             code="unauthorized")
        self._key_setting, self._timeout_s, self._max_rows = key_setting, timeout_s, max_rows
        self._seen = threading.local()  # the last response's status, for errors without a PostgREST body
        self._http = httpx.Client(timeout=timeout_s, http2=True, follow_redirects=False, verify=_verify(ca_file),
                                  event_hooks={"response": [self._saw]})
        try:
            client = create_client(self.url, key, ClientOptions(
                postgrest_client_retry=False, httpx_client=self._http, auto_refresh_token=False,
                persist_session=False))
        except Exception as exc:  # supabase's own checks of the URL and key
            self._http.close()
            raise InputError(f"{url_setting}/{key_setting}: the supabase client refused them ({scrub(str(exc))})",
                             hint="use the project URL and service_role key from the dashboard") from None
        self._rest = client.postgrest

    def _saw(self, response) -> None:
        self._seen.status = response.status_code
        self._seen.html = "html" in response.headers.get("content-type", "")

    # -- errors ------------------------------------------------------------------------------
    def _run(self, what: str, build):
        import httpx
        from postgrest.exceptions import APIError

        self._seen.status, self._seen.html = None, False
        try:
            done = build().execute()
            if self._seen.html:  # PostgREST answers JSON or nothing: a page is a proxy's or a portal's
                raise Unreachable(f"Supabase REST API at {self.url} answered {what} with an HTML page, not "
                                  "PostgREST", hint="check SUPABASE_URL: is it the project's API URL?")
            return done
        except APIError as exc:
            raise self._translate(what, exc) from None
        except httpx.TimeoutException:
            raise Unreachable(f"Supabase REST API at {self.url} did not answer {what} within "
                              f"{self._timeout_s:g}s", hint="check the project's status, or raise supabase.timeout_s") \
                from None
        except httpx.TransportError as exc:
            raise Unreachable(f"Supabase REST API at {self.url} is unreachable ({scrub(str(exc)) or type(exc).__name__})",
                              hint="check SUPABASE_URL and the network") from None

    def _translate(self, what: str, exc) -> ElfError:
        status = getattr(self._seen, "status", None)
        code = str(exc.code or "")
        said = scrub(" ".join(str(p) for p in (exc.message, exc.details) if p) or f"HTTP {status}")
        hint = scrub(str(exc.hint)) if exc.hint else None
        where = f"Supabase REST API at {self.url}"
        if status in (401, 403) or code in ("PGRST301", "PGRST302", "42501"):
            return InputError(f"{where} refused {self._key_setting} for {what} ({status or code}: {said})",
                              hint="use the project's service_role key (Dashboard > Project Settings > API keys); "
                                   "the anon key cannot run elfctl's functions", code="unauthorized")
        if code in ("PGRST202", "PGRST205", "42P01", "42883", "42703", "PGRST204"):
            return StoreNotMigrated(f"the Supabase project at {self.url} is not migrated: "
                                    f"{scrub(exc.message or code)}", hint=MIGRATE_HINT)
        if code in ("23505", "40001", "40P01"):
            return Conflict(f"{where}: {what} conflicted with a concurrent change ({said})",
                            hint="run the command again")
        if code == "57014":
            return Timeout(f"{where}: the database cancelled {what}: {said}",
                           hint="the database's statement_timeout cut it short; retry, or raise the timeout")
        if code.startswith("53") and code != "53400":
            return StoreFull(f"{where}: the database is out of resources: {said}",
                             hint="free resources on the project (Dashboard > Reports), or upgrade its compute")
        if code.startswith(("22", "23")):
            return InputError(f"{where} refused a value in {what}: {said}", hint="check the values given to the command")
        if code == "P0001":
            return OperationFailed(f"{where}: {said}", hint=hint)
        if (status or 0) >= 500 or code.startswith(("PGRST0", "08")) or code in ("502", "503", "504", "520"):
            return Unreachable(f"{where} failed {what} ({status or code}: {said})",
                               hint="Supabase or its database is down or restarting; retry later")
        return OperationFailed(f"{where} refused {what} ({status or code} {code}: {said})", hint=hint)

    # -- Rows --------------------------------------------------------------------------------
    def select(self, relation: str, where: dict[str, Any] | None = None, *, columns: str = "*",
               order: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        relation = _name(relation, "relation")
        wanted = _columns(columns)
        terms = order_terms(order)

        # PostgREST cuts any answer at its max-rows (Supabase: 1,000) without an error: a read is asked
        # for in pages of that size, and a full page is followed by the next, so nothing is cut silently.
        page = self._max_rows if limit is None else min(int(limit), self._max_rows)

        def build(offset: int):
            q = self._rest.from_(relation).select(*(wanted or ["*"]))
            for col, value in (where or {}).items():
                col = _name(col, "column")
                if value is None:
                    q = q.is_(col, "null")
                elif isinstance(value, (list, tuple, set, frozenset)):
                    q = q.in_(col, [_text(v) for v in value])
                else:
                    q = q.eq(col, _text(value))
            for col, desc in terms:
                q = q.order(col, desc=desc)
            q = q.limit(page)
            return q.offset(offset) if offset else q

        rows: list[dict[str, Any]] = []
        while True:
            got = self._run(f"a read of {relation}", functools.partial(build, len(rows))).data
            if not (isinstance(got, list) and all(isinstance(r, dict) for r in got)):
                # a 200 that is not PostgREST's JSON array: a proxy or captive portal answered, not the API
                raise Unreachable(f"Supabase REST API at {self.url} answered a read of {relation} with something "
                                  "that is not PostgREST's JSON", hint="check SUPABASE_URL: is it the project's API URL?")
            rows += got
            if len(got) < page or (limit is not None and len(rows) >= limit):
                return rows[:limit] if limit is not None else rows

    def upsert(self, relation: str, rows: Sequence[dict[str, Any]], *, on_conflict: str,
               ignore_duplicates: bool = False) -> None:
        from postgrest.types import ReturnMethod

        relation = _name(relation, "relation")
        keys = ",".join(_name(k.strip(), "on_conflict column") for k in on_conflict.split(","))
        if not rows:
            return
        body = [{_name(c, "column"): _json(v) for c, v in row.items()} for row in rows]
        self._run(f"an upsert into {relation}", lambda: self._rest.from_(relation).upsert(
            body, on_conflict=keys, ignore_duplicates=ignore_duplicates, returning=ReturnMethod.minimal))

    # -- Functions ---------------------------------------------------------------------------
    def call(self, fn: str, args: dict[str, Any]) -> Any:
        fn = _name(fn, "function")
        params = {_name(k, "argument"): _json(v) for k, v in args.items()}
        data = self._run(f"{fn}()", lambda: self._rest.rpc(fn, params)).data
        return None if self._seen.status == 204 else data  # 204: a void function

    # -- what has no REST form ---------------------------------------------------------------
    def _needs_sql(self, *_args, **_kwargs):
        raise InputError(f"{_command()} needs a database connection: {DB_URL_HINT}",
                         hint="the REST API (SUPABASE_URL/SUPABASE_KEY) serves the running platform; migrate, "
                              "deploy locks and history, and credentials need SQL")

    query = execute = executemany = transaction = exclusive = _needs_sql

    def tables(self) -> list[str]:
        """The relations the REST API exposes (PostgREST's OpenAPI description of its schema)."""
        resp = self._raw_get("/rest/v1/")
        return sorted((resp.json() or {}).get("definitions", {}))

    def server_version(self) -> str:
        server = self._raw_get("/rest/v1/").headers.get("server", "")
        return f"Supabase REST ({server})" if server else "Supabase REST"

    def _raw_get(self, path: str):
        """A GET outside the client's builders (PostgREST's root), its errors translated as the rest."""
        from postgrest.exceptions import APIError, generate_default_error_message

        class _Get:  # the builder shape _run takes: one request, an APIError when refused
            @staticmethod
            def execute():
                resp = self._http.get(self.url + path, headers=dict(self._rest.headers))
                if resp.status_code >= 400:
                    try:
                        body = resp.json()
                    except ValueError:
                        body = None
                    raise APIError(body if isinstance(body, dict) else generate_default_error_message(resp))
                return resp

        return self._run("a read of the schema", lambda: _Get)

    def close(self) -> None:
        self._http.close()


def key_role(key: str) -> str | None:
    """The role a Supabase key runs as, when the key says: the new sb_publishable_/sb_secret_ keys by
    prefix, the legacy ones by the `role` claim of their JWT payload (read, not verified). None: unknown."""
    import base64
    import json

    if key.startswith("sb_publishable_"):
        return "anon"
    if key.startswith("sb_secret_"):
        return "service_role"
    parts = key.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except ValueError:
        return None
    return claims.get("role") if isinstance(claims, dict) else None


def _verify(ca_file: str | None):
    """httpx's `verify`: its default (certifi's authorities), plus those of `ca_file` when given."""
    if not ca_file:
        return True
    import ssl

    import certifi

    ctx = ssl.create_default_context(cafile=certifi.where())
    try:
        ctx.load_verify_locations(cafile=ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise InputError(f"supabase.ca_file {ca_file!r}: not a readable PEM file of certificates ({exc})",
                         hint="give the PEM file of the CA that signed the REST API's certificate, or unset it") \
            from None
    return ctx


def _text(value: Any) -> str:
    """A filter value as PostgREST reads it: booleans as true/false, the rest as their text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def _json(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


def _command() -> str:
    """`elfctl db migrate` when a CLI command is running (its click context, from Typer's click when
    already loaded: nothing is imported for this), else a generic subject (a library call, the gateway)."""
    import sys

    for mod in (sys.modules.get("typer._click.globals"), sys.modules.get("click")):
        ctx = mod.get_current_context(silent=True) if mod and hasattr(mod, "get_current_context") else None
        if ctx is not None:
            names = []
            while ctx.parent is not None:  # the root's own name may be "python -m elfctl": say elfctl
                names.append(ctx.info_name)
                ctx = ctx.parent
            return "`" + " ".join(["elfctl", *reversed(names)]) + "`"
    return "this operation"
