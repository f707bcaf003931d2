import pytest

from elfctl.adapters.migration_files import discover
from elfctl.domain.migrations import checksum, split_statements
from elfctl.errors import InputError


def test_checksum_ignores_line_ending_style():
    assert checksum("a;\nb;\n") == checksum("a;\r\nb;\r\n") == checksum("a;\rb;\r")
    assert checksum("a;\n") != checksum("a; \n")


def test_split_respects_quotes_comments_and_dollar_bodies():
    sql = """
    -- a comment; with a semicolon
    CREATE TABLE t (x TEXT DEFAULT 'a;b');
    /* block; comment */
    INSERT INTO t VALUES ('it''s; fine');
    CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql;
    -- trailing comment only
    """
    stmts = split_statements(sql)
    assert len(stmts) == 3
    assert "'a;b'" in stmts[0]
    assert "'it''s; fine'" in stmts[1]
    assert "$$ SELECT 1; $$" in stmts[2]


def test_dialect_file_replaces_common_one(tmp_path):
    (tmp_path / "0001_a.sql").write_text("SELECT 1;")
    (tmp_path / "0002_b.sql").write_text("SELECT 2;")
    (tmp_path / "0002_b.postgres.sql").write_text("SELECT 'pg';")
    pg = discover(tmp_path, "postgres")
    lite = discover(tmp_path, "sqlite")
    assert [m.file for m in pg] == ["0001_a.sql", "0002_b.postgres.sql"]
    assert [m.file for m in lite] == ["0001_a.sql", "0002_b.sql"]


def test_duplicate_version_and_bad_name_are_errors(tmp_path):
    (tmp_path / "0001_a.sql").write_text("")
    (tmp_path / "0001_b.sql").write_text("")
    with pytest.raises(InputError, match="0001_b.sql: version 1 is already used"):
        discover(tmp_path, "sqlite")
    (tmp_path / "0001_b.sql").unlink()
    (tmp_path / "Bad-Name.sql").write_text("")
    with pytest.raises(InputError, match="Bad-Name.sql: file name"):
        discover(tmp_path, "sqlite")
