"""`Rows.select` / `Rows.upsert` as plain SQL, for the SQL stores (SQLite and Postgres alike: `?`
placeholders, quoted identifiers, `ON CONFLICT ... DO UPDATE/NOTHING`), and the checks every store
applies to names, so the same call means the same thing over SQL and over Supabase's REST API.

`where`: column -> value; a value is equality, None is `IS NULL`, a list/tuple/set is `IN (...)`.
`order`: PostgREST's grammar, "col.desc,other.asc".
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from elfctl.errors import InputError

NAME = re.compile(r"[a-z_][a-z0-9_]*")


def name(value: str, what: str) -> str:
    """A relation, column or function name: `[a-z_][a-z0-9_]*` or a one-line InputError (a bug in the
    caller, never user text: names are not taken from input)."""
    if not isinstance(value, str) or not NAME.fullmatch(value):
        raise InputError(f"{what} {value!r} is not a valid name", hint="use [a-z_][a-z0-9_]*")
    return value


def columns(spec: str) -> list[str] | None:
    """"*" -> None (every column); "a, b" -> ["a", "b"]."""
    if spec.strip() == "*":
        return None
    return [name(c.strip(), "column") for c in spec.split(",")]


def order_terms(spec: str | None) -> list[tuple[str, bool]]:
    """"a.desc,b" -> [("a", True), ("b", False)]: (column, descending)."""
    terms = []
    for term in (spec or "").split(","):
        if not term.strip():
            continue
        col, *mods = term.strip().split(".")
        if mods not in ([], ["asc"], ["desc"]):
            raise InputError(f"order {spec!r}: unknown modifier in {term!r}", hint='use "col", "col.asc" or "col.desc"')
        terms.append((name(col, "order column"), mods == ["desc"]))
    return terms


def _q(ident: str) -> str:
    return f'"{ident}"'


def select_sql(relation: str, where: dict[str, Any] | None, cols: str, order: str | None,
               limit: int | None) -> tuple[str, list[Any]]:
    wanted = columns(cols)
    sql = f"SELECT {'*' if wanted is None else ', '.join(map(_q, wanted))} FROM {_q(name(relation, 'relation'))}"
    params: list[Any] = []
    clauses = []
    for col, value in (where or {}).items():
        col = _q(name(col, "column"))
        if value is None:
            clauses.append(f"{col} IS NULL")
        elif isinstance(value, (list, tuple, set, frozenset)):
            items = list(value)
            clauses.append(f"{col} IN ({', '.join('?' for _ in items)})" if items else "1 = 0")
            params.extend(items)
        else:
            clauses.append(f"{col} = ?")
            params.append(value)
    if clauses:
        sql += " WHERE " + " AND ".join(clauses)
    terms = order_terms(order)
    if terms:
        sql += " ORDER BY " + ", ".join(_q(c) + (" DESC" if desc else " ASC") for c, desc in terms)
    if limit is not None:
        sql += " LIMIT ?"
        params.append(int(limit))
    return sql, params


def upsert_sql(relation: str, rows: Sequence[dict[str, Any]], on_conflict: str,
               ignore_duplicates: bool) -> tuple[str, list[Any]]:
    """One multi-row INSERT (atomic, like PostgREST's): the columns are the union of the rows' keys, a
    key a row lacks is NULL (as the supabase client's `columns` parameter makes PostgREST do)."""
    cols: list[str] = []
    for row in rows:
        cols.extend(c for c in row if c not in cols)
    keys = [name(k.strip(), "on_conflict column") for k in on_conflict.split(",")]
    table = _q(name(relation, "relation"))
    quoted = [_q(name(c, "column")) for c in cols]
    values = ", ".join("(" + ", ".join("?" for _ in cols) + ")" for _ in rows)
    sql = f"INSERT INTO {table} ({', '.join(quoted)}) VALUES {values} ON CONFLICT ({', '.join(map(_q, keys))}) "
    if ignore_duplicates:
        sql += "DO NOTHING"
    else:
        updated = [c for c in cols if c not in keys] or keys  # only keys: a no-op update, as PostgREST's
        sql += "DO UPDATE SET " + ", ".join(f"{_q(c)} = excluded.{_q(c)}" for c in updated)
    return sql, [row.get(c) for row in rows for c in cols]


class SqlRows:
    """`Rows` for a store that has `query`/`execute` with `?` placeholders (SqliteStore, PostgresStore)."""

    def select(self, relation: str, where: dict[str, Any] | None = None, *, columns: str = "*",
               order: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        return self.query(*select_sql(relation, where, columns, order, limit))  # type: ignore[attr-defined]

    def upsert(self, relation: str, rows: Sequence[dict[str, Any]], *, on_conflict: str,
               ignore_duplicates: bool = False) -> None:
        if rows:
            self.execute(*upsert_sql(relation, rows, on_conflict, ignore_duplicates))  # type: ignore[attr-defined]
