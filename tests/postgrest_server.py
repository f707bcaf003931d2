"""A PostgREST-compatible server over the real test Postgres, for exactly what the `supabase` client
sends for the calls elfctl makes. No PostgREST binary can be installed here; this speaks its subset.

    rest = PostgrestServer(dsn, service_key="svc", anon_key="anon").start()
    rest.url                         # http://127.0.0.1:PORT  (what SUPABASE_URL is set to)
    rest.requests                    # [{"method", "path", "query", "prefer", ...}] as the client sent them
    rest.behave(status=503)          # every request answers 503 (a PostgREST body) until behave()
    rest.behave(stall=5)             # hold each request 5 s before answering
    rest.behave(drop=True)           # close each connection without an answer
    rest.stop()

    PostgrestServer(dsn, ..., max_rows=1000)  # PostgREST's db-max-rows (Supabase's "Max rows", 1000 by
                                              # default): a table read or a set-returning function
                                              # answers at most that many rows; a scalar or jsonb result
                                              # (one value) is not cut

What it does, as PostgREST does it:
- `/rest/v1/<relation>` GET: `select=col,col|*`, filters `col=[not.]eq|neq|gt|gte|lt|lte.v`, `in.(a,"b,c")`,
  `is.null|true|false`, `order=col.desc.nullslast,...`, `limit`, `offset`; `Prefer: count=exact`;
  `Content-Range` always; `Accept: application/vnd.pgrst.object+json` (406 PGRST116 unless one row).
- `/rest/v1/<relation>` POST: a JSON object or array; `columns`, `on_conflict`; `Prefer: return=
  representation|minimal, resolution=merge-duplicates|ignore-duplicates, count=exact`. Rows are read with
  `json_populate_recordset(null::relation, body)` (PostgREST's own way), so column types are Postgres's.
- `/rest/v1/rpc/<fn>` POST: named arguments from the JSON body matched against the function's parameter
  names (404 PGRST202 when none matches), passed through `json_to_record` with the declared types; a set
  is a JSON array, a scalar or jsonb its JSON, void 204.
- Keys: `apikey` and `Authorization: Bearer`: the service key runs as `service_role`, the anon key as
  `anon`, anything else is 401 PGRST301. Each request is one transaction with `SET LOCAL ROLE <role>`
  and `request.jwt.claims` set, so grants and row level security are exercised for real.
- `Accept-Profile` (reads) / `Content-Profile` (writes) pick the schema; one not exposed is 406 PGRST106.
- Errors: `{code, message, details, hint}` with PostgREST's status mapping (23505 -> 409, 42501 -> 401 for
  anon / 403 otherwise, P0001 -> 400, 42883 / 42P01 -> 404, 08* / 53* -> 503, ...).
- The schema cache: relations and functions are read once and kept until `NOTIFY pgrst, 'reload schema'`
  (or an empty payload) arrives on a LISTEN connection, so a function created without that NOTIFY is 404
  PGRST202, as on a real PostgREST. A miss first waits for notifications already committed (a barrier
  NOTIFY on the listener's own channel), so a reload sent just before the request is never raced.
"""

from __future__ import annotations

import json
import queue
import re
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests import loopback

IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
OPS = {"eq": "=", "neq": "<>", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
OBJECT = "application/vnd.pgrst.object+json"


class RestError(Exception):
    def __init__(self, status: int, code: str, message: str, details: Any = None, hint: Any = None):
        super().__init__(message)
        self.status, self.body = status, {"code": code, "details": details, "hint": hint, "message": message}


def status_for(sqlstate: str, role: str) -> int:
    """PostgREST's SQLSTATE -> HTTP status table (docs.postgrest.org, errors: HTTP status codes)."""
    exact = {"23503": 409, "23505": 409, "25006": 405, "53400": 500, "P0001": 400, "42883": 404,
             "42P01": 404, "42P17": 500, "42501": 401 if role == "anon" else 403}
    if sqlstate in exact:
        return exact[sqlstate]
    prefix = {"08": 503, "09": 500, "0L": 403, "0P": 403, "25": 500, "28": 403, "2D": 500, "38": 500,
              "39": 500, "3B": 500, "40": 500, "53": 503, "54": 500, "55": 500, "57": 500, "58": 500,
              "F0": 500, "HV": 500, "P0": 500, "XX": 500}
    return prefix.get(sqlstate[:2], 400)


def split_list(text: str) -> list[str]:
    """`a,"b,c",d` -> ["a", "b,c", "d"]: PostgREST's list grammar for in.(...)."""
    out, cur, quoted, escaped, seen = [], [], False, False, False
    for ch in text:
        if escaped:
            cur.append(ch)
            escaped = False
        elif quoted and ch == "\\":
            escaped = True
        elif ch == '"':
            quoted, seen = not quoted, True
        elif ch == "," and not quoted:
            out.append("".join(cur))
            cur, seen = [], False
        else:
            cur.append(ch)
    if cur or seen or out:
        out.append("".join(cur))
    return out


class SchemaCache:
    """Relations (name -> columns) and functions of the exposed schemas, as PostgREST caches them."""

    def __init__(self, conn, schemas: tuple[str, ...]):
        rels = conn.execute(
            "SELECT n.nspname, c.relname, array_agg(a.attname::text ORDER BY a.attnum) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_attribute a ON a.attrelid = c.oid "
            "AND a.attnum > 0 AND NOT a.attisdropped WHERE n.nspname = ANY(%s) "
            "AND c.relkind IN ('r', 'v', 'm', 'p', 'f') GROUP BY 1, 2", (list(schemas),)).fetchall()
        self.relations = {(s, r): cols for s, r, cols in rels}
        fns = conn.execute(
            "SELECT n.nspname, p.proname, p.proretset, p.prorettype = 'void'::regtype, p.pronargs, "
            "p.pronargdefaults, coalesce(p.proargnames, '{}'), coalesce(p.proargmodes::text[], '{}'), "
            "array(SELECT format_type(t, NULL) FROM unnest(p.proargtypes) WITH ORDINALITY u(t, i) ORDER BY i), "
            "t.typtype = 'c' OR p.prorettype = 'record'::regtype FROM pg_proc p "
            "JOIN pg_namespace n ON n.oid = p.pronamespace JOIN pg_type t ON t.oid = p.prorettype "
            "WHERE n.nspname = ANY(%s) AND p.prokind = 'f'", (list(schemas),)).fetchall()
        self.functions: dict[tuple[str, str], list[dict]] = {}
        for schema, name, retset, void, nargs, ndefaults, names, modes, types, composite in fns:
            in_names = [n for i, n in enumerate(names) if not modes or modes[i] in ("i", "b", "v")]
            if len(in_names) < nargs or "" in in_names:
                continue  # unnamed parameters: not callable with named arguments
            params = list(zip(in_names[:nargs], types, strict=True))
            self.functions.setdefault((schema, name), []).append({
                "params": params, "required": {n for n, _ in params[:nargs - ndefaults]},
                "retset": retset, "void": void, "composite": composite})


class PostgrestServer:
    def __init__(self, dsn: str, service_key: str, anon_key: str, schemas: tuple[str, ...] = ("public",),
                 pool_size: int = 8, max_rows: int | None = None):
        import psycopg

        self._psycopg = psycopg
        self.dsn, self.schemas, self.max_rows = dsn, schemas, max_rows
        self.keys = {service_key: "service_role", anon_key: "anon"}
        self.requests: list[dict] = []
        self.status: int | None = None
        self.stall, self.drop, self.html = 0.0, False, False
        self.reloads = 0  # schema cache loads, for tests of the NOTIFY semantics
        self._pool: queue.LifoQueue = queue.LifoQueue()
        self._pool_size = pool_size
        self._opened = 0
        self._guard = threading.Lock()
        self._cache: SchemaCache | None = None
        self._barrier_seen: set[str] = set()
        self._barrier = threading.Condition()
        self._httpd: ThreadingHTTPServer | None = None
        self._listener = None
        self._channel = "pgrst_barrier_" + uuid.uuid4().hex[:8]

    # -- lifecycle ---------------------------------------------------------------------------
    @property
    def url(self) -> str:
        assert self._httpd is not None, "start() the server first"
        host, port = self._httpd.server_address[:2]
        return f"{'https' if self._httpd.tls else 'http'}://{host}:{port}"

    def behave(self, status: int | None = None, stall: float = 0.0, drop: bool = False,
               html: bool = False) -> PostgrestServer:
        """Answer every request with `status` (a PostgREST 5xx body), hold it `stall` s, `drop` the
        connection without an answer (a proxy or server killed mid-request), or answer 200 with an
        `html` page (a captive portal, a misrouted proxy); behave() heals."""
        self.status, self.stall, self.drop, self.html = status, stall, drop, html
        return self

    def start(self, host: str = "127.0.0.1", tls: Any = None) -> PostgrestServer:
        """`host`/`tls`: as tests/loopback.serve takes them (a Docker bridge's address, https)."""
        self._listener = self._psycopg.connect(self.dsn, autocommit=True)
        self._listener.execute("LISTEN pgrst")
        self._listener.execute(f"LISTEN {self._channel}")
        threading.Thread(target=self._listen, daemon=True).start()
        self._httpd = loopback.serve(_handler(self), host, tls)
        return self

    def stop(self) -> None:
        loopback.stop(self._httpd)
        if self._listener is not None:
            self._listener.close()  # ends the listen thread's loop
        while not self._pool.empty():
            self._pool.get_nowait().close()

    # -- the schema cache and its reload ----------------------------------------------------
    def _listen(self) -> None:
        try:
            for note in self._listener.notifies():
                if note.channel == "pgrst" and note.payload in ("", "reload schema"):
                    with self._guard:
                        self._cache = None
                    self.cache()  # at once, as PostgREST does: what is created after the NOTIFY waits for the next
                elif note.channel == self._channel:
                    with self._barrier:
                        self._barrier_seen.add(note.payload)
                        self._barrier.notify_all()
        except Exception:  # noqa: BLE001 - the connection closed at stop()
            pass

    def _sync_notifications(self, conn) -> None:
        """Wait until every NOTIFY committed before now has reached the listener: Postgres delivers a
        listener's notifications in commit order, so seeing our own barrier means the rest came first."""
        token = uuid.uuid4().hex
        conn.execute("SELECT pg_notify(%s, %s)", (self._channel, token))
        with self._barrier:
            self._barrier.wait_for(lambda: token in self._barrier_seen, timeout=5)
            self._barrier_seen.discard(token)

    def cache(self, fresh: bool = False) -> SchemaCache:
        """The cached schema; `fresh` first takes in every reload NOTIFY already committed. Read on a
        connection of its own, as the server's user, outside the request's transaction and role."""
        conn = self._conn()
        try:
            if fresh:
                self._sync_notifications(conn)
            with self._guard:
                if self._cache is None:
                    self._cache = SchemaCache(conn, self.schemas)
                    self.reloads += 1
                return self._cache
        finally:
            self._release(conn)

    # -- connections -------------------------------------------------------------------------
    def _conn(self):
        try:
            return self._pool.get_nowait()
        except queue.Empty:
            pass
        try:
            return self._psycopg.connect(self.dsn, autocommit=True, connect_timeout=5)
        except self._psycopg.OperationalError as exc:
            raise RestError(503, "PGRST001", "Could not connect with the database due to an internal error.",
                            details=str(exc).strip().splitlines()[-1]) from None

    def _release(self, conn) -> None:
        if conn.closed or conn.broken or self._pool.qsize() >= self._pool_size:
            conn.close()
        else:
            self._pool.put(conn)

    # -- one request ------------------------------------------------------------------------
    def handle(self, method: str, path: str, headers, body: bytes) -> tuple[int, dict[str, str], bytes]:
        parts = urlsplit(path)
        query = parse_qsl(parts.query, keep_blank_values=True)
        self.requests.append({
            "method": method, "path": parts.path, "query": query,
            "prefer": headers.get("Prefer"), "accept": headers.get("Accept"),
            "accept_profile": headers.get("Accept-Profile"), "content_profile": headers.get("Content-Profile"),
            "body": json.loads(body) if body else None})
        if self.stall:
            time.sleep(self.stall)
        if self.status:
            raise RestError(self.status, "PGRST000" if self.status == 503 else str(self.status),
                            "Could not connect with the database due to an incorrect connection string or due "
                            "to the Postgres service not running.")
        role = self._role(headers)
        if not parts.path.startswith("/rest/v1/"):
            raise RestError(404, "PGRST125", f"Invalid path specified in request URL: {parts.path}")
        target = parts.path.removeprefix("/rest/v1/").strip("/")
        reading = method in ("GET", "HEAD")
        schema = headers.get("Accept-Profile" if reading else "Content-Profile") or self.schemas[0]
        if schema not in self.schemas:
            raise RestError(406, "PGRST106", f"Invalid schema: {schema}",
                            hint=f"Only the following schemas are exposed: {', '.join(self.schemas)}")
        prefer = {p.strip() for p in (headers.get("Prefer") or "").split(",") if p.strip()}
        conn = self._conn()
        try:
            with conn.transaction():
                conn.execute(self._psycopg.sql.SQL("SET LOCAL ROLE {}").format(self._psycopg.sql.Identifier(role)))
                conn.execute("SELECT set_config('request.jwt.claims', %s, true)", (json.dumps({"role": role}),))
                if target.startswith("rpc/") and method == "POST":
                    return self._rpc(conn, schema, target.removeprefix("rpc/"), body, role)
                if not target and reading:  # the OpenAPI description of the exposed relations
                    rels = {r: {"properties": {c: {} for c in cols}}
                            for (sch, r), cols in self.cache().relations.items() if sch == schema}
                    return 200, {"Content-Type": "application/openapi+json; charset=utf-8"}, json.dumps(
                        {"swagger": "2.0", "info": {"title": "PostgREST API"}, "definitions": rels}).encode()
                if "/" in target or not target:
                    raise RestError(404, "PGRST125", f"Invalid path specified in request URL: {parts.path}")
                if reading:
                    return self._select(conn, schema, target, query, prefer, headers.get("Accept") or "")
                if method == "POST":
                    return self._insert(conn, schema, target, query, prefer, body)
                raise RestError(405, "PGRST117", f"Unsupported HTTP method: {method}")
        except self._psycopg.Error as exc:
            state = getattr(exc, "sqlstate", None) or "08000"
            diag = exc.diag
            raise RestError(status_for(state, role), state, diag.message_primary or str(exc).strip(),
                            details=diag.message_detail, hint=diag.message_hint) from None
        finally:
            self._release(conn)

    def _role(self, headers) -> str:
        apikey = headers.get("apikey")
        bearer = (headers.get("Authorization") or "").removeprefix("Bearer ").strip() or None
        if apikey is None and bearer is None:
            raise RestError(401, "PGRST301", "No API key found in request",
                            hint="No `apikey` request header or url param was found.")
        for key in (apikey, bearer):
            if key is not None and key not in self.keys:
                raise RestError(401, "PGRST301", "No suitable key or wrong key type")
        return self.keys[bearer or apikey]

    def _relation(self, conn, schema: str, name: str) -> list[str]:
        for fresh in (False, True):
            cols = self.cache(fresh).relations.get((schema, name))
            if cols is not None:
                return cols
        raise RestError(404, "PGRST205", f"Could not find the table '{schema}.{name}' in the schema cache")

    def _ident(self, name: str, what: str):
        if not IDENT.match(name):
            raise RestError(400, "PGRST100", f'"failed to parse {what}" ({name})', details=f"unexpected {name!r}")
        return self._psycopg.sql.Identifier(name)

    def _select(self, conn, schema, rel, query, prefer, accept):
        sql = self._psycopg.sql
        self._relation(conn, schema, rel)
        cols, where, params, order, limit, offset = sql.SQL("*"), [], [], [], None, None
        for key, value in query:
            if key == "select":
                if value.strip() != "*":
                    cols = sql.SQL(", ").join(self._ident(c.strip(), "select") for c in value.split(","))
            elif key == "order":
                for term in value.split(","):
                    name, *mods = term.split(".")
                    part = self._ident(name, "order")
                    direction = mods[:1] if mods[:1] in (["asc"], ["desc"]) else []
                    nulls = mods[len(direction):]
                    if nulls not in ([], ["nullsfirst"], ["nullslast"]):
                        raise RestError(400, "PGRST100", f'"failed to parse order ({value})"',
                                        details=f"unexpected {'.'.join(mods)!r}")
                    for mod in direction + nulls:
                        part = sql.SQL("{} {}").format(part, sql.SQL({"nullsfirst": "NULLS FIRST",
                                                                      "nullslast": "NULLS LAST"}.get(mod, mod.upper())))
                    order.append(part)
            elif key in ("limit", "offset"):
                if not value.isdigit():
                    raise RestError(400, "PGRST100", f'"failed to parse {key} ({value})"')
                limit, offset = (int(value), offset) if key == "limit" else (limit, int(value))
            else:
                where.append(self._filter(key, value, params))
        if self.max_rows is not None:  # db-max-rows caps whatever limit the request asked for
            limit = self.max_rows if limit is None else min(limit, self.max_rows)
        stmt = sql.SQL("SELECT {} FROM {}.{}").format(cols, sql.Identifier(schema), sql.Identifier(rel))
        if where:
            stmt += sql.SQL(" WHERE ") + sql.SQL(" AND ").join(where)
        if order:
            stmt += sql.SQL(" ORDER BY ") + sql.SQL(", ").join(order)
        if limit is not None:
            stmt += sql.SQL(" LIMIT {}").format(sql.Literal(limit))
        if offset is not None:
            stmt += sql.SQL(" OFFSET {}").format(sql.Literal(offset))
        body, n = conn.execute(sql.SQL("SELECT coalesce(json_agg(t), '[]')::text, count(*) FROM ({}) t")
                               .format(stmt), params).fetchone()
        total = "*"
        if "count=exact" in prefer:
            counted = sql.SQL("SELECT count(*) FROM {}.{}").format(sql.Identifier(schema), sql.Identifier(rel))
            if where:
                counted += sql.SQL(" WHERE ") + sql.SQL(" AND ").join(where)
            total = str(conn.execute(counted, params).fetchone()[0])
        start = offset or 0
        headers = {"Content-Range": f"{start}-{start + n - 1}/{total}" if n else f"*/{total}"}
        return self._shape(200, body, n, accept, headers)

    def _shape(self, status, body: str, n: int, accept: str, headers: dict) -> tuple[int, dict, bytes]:
        if accept.startswith(OBJECT):
            if n != 1:
                raise RestError(406, "PGRST116", "Cannot coerce the result to a single JSON object",
                                details=f"The result contains {n} rows")
            body = json.dumps(json.loads(body)[0])
            headers["Content-Type"] = OBJECT + "; charset=utf-8"
        return status, headers, body.encode()

    def _filter(self, column: str, value: str, params: list):
        sql = self._psycopg.sql
        col = self._ident(column, "filter")
        negate = value.startswith("not.")
        op, _, arg = value.removeprefix("not.").partition(".")
        if op in OPS:
            params.append(arg)
            clause = sql.SQL("{} " + OPS[op] + " %s").format(col)
        elif op == "in":
            if not (arg.startswith("(") and arg.endswith(")")):
                raise RestError(400, "PGRST100", f'"failed to parse filter ({value})"')
            items = split_list(arg[1:-1])
            params.extend(items)
            clause = sql.SQL("{} IN ({})").format(col, sql.SQL(", ").join(sql.SQL("%s") for _ in items)) \
                if items else sql.SQL("false")
        elif op == "is" and arg in ("null", "true", "false", "unknown"):
            clause = sql.SQL("{} IS " + arg.upper()).format(col)
        else:
            raise RestError(400, "PGRST100", f'"failed to parse filter ({value})"')
        return sql.SQL("NOT ({})").format(clause) if negate else clause

    def _insert(self, conn, schema, rel, query, prefer, body):
        sql = self._psycopg.sql
        table_cols = self._relation(conn, schema, rel)
        payload = json.loads(body or b"null")
        rows = payload if isinstance(payload, list) else [payload]
        if not all(isinstance(r, dict) for r in rows):
            raise RestError(400, "PGRST102", "Empty or invalid json")
        args = dict(query)
        if "columns" in args:
            names = [c.strip().strip('"') for c in args["columns"].split(",")]
        else:
            names = list(rows[0]) if rows else []
            if any(set(r) != set(names) for r in rows):
                raise RestError(400, "PGRST102", "All object keys must match")
        for name in names:
            if name not in table_cols:
                raise RestError(400, "PGRST204", f"Could not find the '{name}' column of '{rel}' in the schema cache")
        target = sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(rel))
        collist = sql.SQL(", ").join(self._ident(n, "columns") for n in names)
        stmt = sql.SQL("INSERT INTO {} ({}) SELECT {} FROM json_populate_recordset(NULL::{}, %s::json) ").format(
            target, collist, collist, target)
        on_conflict = args.get("on_conflict")
        merge, ignore = "resolution=merge-duplicates" in prefer, "resolution=ignore-duplicates" in prefer
        if merge or ignore:
            keys = [k.strip() for k in on_conflict.split(",")] if on_conflict else self._primary_key(conn, schema, rel)
            keylist = sql.SQL(", ").join(self._ident(k, "on_conflict") for k in keys)
            if ignore:
                stmt += sql.SQL("ON CONFLICT ({}) DO NOTHING").format(keylist)
            else:
                sets = [sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(n)) for n in names]
                stmt += sql.SQL("ON CONFLICT ({}) DO UPDATE SET {}").format(keylist, sql.SQL(", ").join(sets))
        stmt += sql.SQL(" RETURNING *")
        outer = sql.SQL("WITH w AS ({}) SELECT coalesce(json_agg(w), '[]')::text, count(*) FROM w").format(stmt)
        out, n = conn.execute(outer, (json.dumps(rows),)).fetchone()
        headers = {"Content-Range": f"*/{n}" if "count=exact" in prefer else "*/*"}
        if "return=representation" in prefer:
            return 201, headers, out.encode()
        return 201, headers, b""

    def _primary_key(self, conn, schema, rel) -> list[str]:
        return [r[0] for r in conn.execute(
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
            "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = %s::regclass AND i.indisprimary",
            (f'"{schema}"."{rel}"',)).fetchall()]

    def _rpc(self, conn, schema, name, body, role):
        sql = self._psycopg.sql
        args = json.loads(body or b"{}") or {}
        if not isinstance(args, dict):
            raise RestError(400, "PGRST102", "Empty or invalid json")
        given = set(args)
        fn = None
        for fresh in (False, True):
            for cand in self.cache(fresh).functions.get((schema, name), []):
                names = {n for n, _ in cand["params"]}
                if cand["required"] <= given <= names:
                    fn = cand
                    break
            if fn:
                break
        if fn is None:
            listed = ", ".join(sorted(given))
            raise RestError(404, "PGRST202",
                            f"Could not find the function {schema}.{name}({listed}) in the schema cache"
                            if given else f"Could not find the function {schema}.{name} without parameters in "
                            "the schema cache",
                            details=f"Searched for the function {schema}.{name} with parameter"
                                    f"{'s ' + listed if given else 's'} or with a single unnamed json/jsonb "
                                    "parameter, but no matches were found in the schema cache.",
                            hint="Perhaps you need to reload the schema cache (NOTIFY pgrst, 'reload schema').")
        used = [(n, t) for n, t in fn["params"] if n in given]
        call = sql.SQL("{}.{}({})").format(sql.Identifier(schema), sql.Identifier(name), sql.SQL(", ").join(
            sql.SQL("{} := r.{}").format(sql.Identifier(n), sql.Identifier(n)) for n, _ in used))
        record = sql.SQL(", ").join(sql.SQL("{} {}").format(sql.Identifier(n), sql.SQL(t)) for n, t in used)
        source = sql.SQL("json_to_record(%s::json) AS r({})").format(record) if used else sql.SQL("(SELECT 1) r")
        if fn["retset"]:
            capped = sql.SQL(" LIMIT {}").format(sql.Literal(self.max_rows)) if self.max_rows is not None else sql.SQL("")
            stmt = sql.SQL("SELECT coalesce(json_agg(t.v), '[]')::text FROM (SELECT x AS v FROM {} CROSS JOIN LATERAL {} x{}) t"
                           ).format(source, call, capped)
        else:
            stmt = sql.SQL("SELECT to_json({})::text FROM {}").format(call, source)
        out = conn.execute(stmt, (json.dumps(args),) if used else ()).fetchone()[0]
        if fn["void"]:
            return 204, {}, b""
        return 200, {"Content-Range": "0-0/*"}, (out or "null").encode()


def _handler(server: PostgrestServer):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the client's httpx pool expects
        server_version, sys_version = "postgrest/12.2.12", ""  # the Server header PostgREST sends
        disable_nagle_algorithm = True  # headers and body go in two writes: no 40 ms delayed-ACK wait

        def _serve(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if server.drop:
                self.close_connection = True
                return
            if server.html:
                page = b"<html><body>Sign in to the network</body></html>"
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(page)))
                self.end_headers()
                self.wfile.write(page)
                return
            try:
                try:
                    status, headers, out = server.handle(self.command, self.path, self.headers, body)
                    headers.setdefault("Content-Type", "application/json; charset=utf-8")
                except (ValueError, KeyError, TypeError) as exc:  # a body or query this server cannot read
                    raise RestError(400, "PGRST102", f"Empty or invalid json ({exc})") from None
            except RestError as err:
                status, out = err.status, json.dumps(err.body).encode()
                headers = {"Content-Type": "application/json; charset=utf-8",
                           "Proxy-Status": f"PostgREST; error={err.body['code']}"}
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(out)

        do_GET = do_POST = do_HEAD = do_PATCH = do_DELETE = _serve  # noqa: N815

        def log_message(self, *_args: Any) -> None:
            pass

    return Handler


if __name__ == "__main__":  # a server in its own process (benchmarks): prints its URL, serves until killed
    import argparse

    p = argparse.ArgumentParser()
    p.add_argument("--dsn", required=True)
    p.add_argument("--service-key", required=True)
    p.add_argument("--anon-key", required=True)
    a = p.parse_args()
    rest = PostgrestServer(a.dsn, a.service_key, a.anon_key).start()
    print(rest.url, flush=True)
    threading.Event().wait()
