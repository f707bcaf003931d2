from elfctl.redact import redact_url, register_secret, scrub


def test_redact_url_keeps_everything_but_the_password():
    assert redact_url("postgresql://app:s3cr%40t@db.example:5432/elf?sslmode=require") == \
        "postgresql://app:****@db.example:5432/elf?sslmode=require"
    assert redact_url("sqlite:////tmp/x.db") == "sqlite:////tmp/x.db"
    assert redact_url("postgresql://app@db/elf") == "postgresql://app@db/elf"


def test_scrub_removes_registered_values_and_url_passwords():
    register_secret("canary-9f8e7d6c")
    text = "connect postgresql://u:pw123@h/db with key canary-9f8e7d6c"
    assert scrub(text) == "connect postgresql://u:****@h/db with key ****"
