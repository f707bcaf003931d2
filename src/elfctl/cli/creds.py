"""`elfctl creds ...`: keep credentials encrypted, inject them, rotate them, audit every use.

Values enter only through a hidden prompt, --stdin or --from-env VAR (never argv: shell history and
`ps` would show them) and leave only through `get` (to a pipe/file, or a terminal with --reveal)
and `run` (the child's environment)."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from elfctl.cli.bounds import bounded
from elfctl.cli.common import JsonOpt, finish, get_app

app = typer.Typer(
    help="Credentials: stored encrypted (OS keyring or file), injected, rotated, audited.",
    no_args_is_help=True,
)

TeamOpt = Annotated[str | None, typer.Option("--team", "-t", help="Team scope (default: global).")]
StdinOpt = Annotated[bool, typer.Option("--stdin", help="Read the value from stdin.")]
FromEnvOpt = Annotated[
    str | None,
    typer.Option("--from-env", metavar="VAR", help="Read the value from environment variable VAR."),
]
# A value typed after the name would be in shell history already; refuse it without echoing it
# (Click's own "unexpected extra argument" error would print it).
ArgvValue = Annotated[list[str] | None, typer.Argument(hidden=True, show_default=False)]
ExpiresOpt = Annotated[str | None, typer.Option("--expires", help="Expire after this long, e.g. 90d.")]


def _vault(ctx, json_mode: bool, verb: str):
    from elfctl.services.credentials.app import vault_for

    app_ = get_app(ctx, json_mode)
    return app_, vault_for(app_, prompt=_passphrase_prompt, command=f"elfctl creds {verb}")


def _passphrase_prompt(new_file: bool) -> str | None:
    """The credential file's passphrase from the terminal (twice for a new file); None without one."""
    import getpass

    from elfctl.errors import InputError

    if not sys.stdin.isatty():
        return None
    first = getpass.getpass("credential file passphrase: ")
    if new_file and getpass.getpass("repeat it: ") != first:
        raise InputError("the passphrases differ", hint="type the same passphrase twice")
    return first


def _value(name: str, stdin: bool, from_env: str | None, argv_value: list[str] | None = None,
           confirm: bool = False):
    """The value from exactly one safe source, as a Secret from the first moment."""
    import getpass

    from elfctl.errors import InputError
    from elfctl.redact import secret

    if argv_value:
        for word in argv_value:
            secret(word)  # register it, so nothing printed later can show it
        raise InputError(
            "values are never taken from the command line (shell history and `ps` show them)",
            hint="use --stdin, --from-env VAR or the hidden prompt; consider that value exposed",
        )
    if stdin and from_env:
        raise InputError("--stdin and --from-env both given", hint="use one of them")
    if from_env:
        if from_env not in os.environ:
            raise InputError(
                f"--from-env {from_env}: that environment variable is not set",
                hint=f"export {from_env} first, or use --stdin",
            )
        return secret(os.environ[from_env])
    if stdin:
        raw = sys.stdin.read()
        return secret(raw[:-2] if raw.endswith("\r\n") else raw[:-1] if raw.endswith("\n") else raw)
    if not sys.stdin.isatty():
        raise InputError(
            f"{name}: no value given",
            hint="pipe it with --stdin, use --from-env VAR, or run "
            "in a terminal to be prompted (values never go in argv)",
        )
    value = secret(getpass.getpass(f"value for {name} (hidden): "))
    if confirm and getpass.getpass("repeat it: ") != value.reveal():
        raise InputError("the two entries differ", hint="type the same value twice")
    return value


def _info_line(verb: str):
    return lambda c: (
        f"{verb} {c.name} ({'team ' + c.scope if c.scope else 'global'}) version {c.version} "
        f"in {c.backend}" + (f", expires {c.expires_at}" if c.expires_at else "")
    )


@app.command("set")
def set_(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="UPPER_SNAKE_CASE name, e.g. OPENAI_API_KEY.")],
    argv_value: ArgvValue = None,
    team: TeamOpt = None,
    stdin: StdinOpt = False,
    from_env: FromEnvOpt = None,
    expires: ExpiresOpt = None,
    json_mode: JsonOpt = False,
) -> None:
    """Store a credential (an existing one keeps its old value as the previous version)."""
    from elfctl.services.credentials import vault as svc

    app_, vault = _vault(ctx, json_mode, "set")
    info = svc.set_value(vault, name, _value(name, stdin, from_env, argv_value), team=team, expires=expires)
    app_.output.result(info, _info_line("stored"))


@app.command("get")
def get(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Credential name.")],
    team: TeamOpt = None,
    reveal: Annotated[bool, typer.Option("--reveal", help="Allow printing to a terminal.")] = False,
    previous: Annotated[
        bool, typer.Option("--previous", help="The previous version (within its grace).")
    ] = False,
    json_mode: JsonOpt = False,
) -> None:
    """Write the value to stdout when it is a pipe or file (a terminal only with --reveal). Audited."""
    import json

    from elfctl.errors import InputError
    from elfctl.services.credentials import vault as svc

    app_, vault = _vault(ctx, json_mode, "get")
    if sys.stdout.isatty() and not reveal:
        raise InputError(
            "refusing to print a credential to a terminal",
            hint="pipe or redirect it (`| pbcopy`, `> file`), or add --reveal",
        )
    info, value = svc.get(vault, name, team=team, previous=previous)
    # The one deliberate exit of a value: straight to stdout, past the scrubbing renderer.
    if app_.output.json:
        data = {
            "name": info.name,
            "scope": info.scope or "global",
            "version": info.version - (1 if previous else 0),
            "value": value.reveal(),
        }
        sys.stdout.write(json.dumps(data) + "\n")
    else:
        sys.stdout.write(value.reveal() + ("\n" if sys.stdout.isatty() else ""))
    sys.stdout.flush()


@app.command("list")
def list_(ctx: typer.Context, team: TeamOpt = None, json_mode: JsonOpt = False) -> None:
    """Name, scope, backend, version, dates. Never a value, not even a prefix."""
    from elfctl.services.credentials import vault as svc

    app_, vault = _vault(ctx, json_mode, "list")
    rows = svc.list_(vault, team)

    def human(rows):
        from rich.table import Table

        if not rows:
            return "no credentials yet: `elfctl creds set NAME`"
        table = Table()
        for col in ("name", "scope", "backend", "version", "created", "rotated", "expires", "last used"):
            table.add_column(col)
        for r in rows:
            table.add_row(
                r.name,
                r.scope or "global",
                r.backend,
                str(r.version),
                r.created_at,
                r.rotated_at or "",
                r.expires_at or "",
                r.last_used_at or "",
            )
        return table

    app_.output.result(rows, human)


@app.command("rm")
def rm(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Credential name.")],
    team: TeamOpt = None,
    json_mode: JsonOpt = False,
) -> None:
    """Delete a credential: every stored version and its metadata (the audit trail stays)."""
    from elfctl.services.credentials import vault as svc

    app_, vault = _vault(ctx, json_mode, "rm")
    app_.output.result(svc.remove(vault, name, team=team), _info_line("removed"))


@app.command("rotate")
def rotate(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Credential name.")],
    argv_value: ArgvValue = None,
    team: TeamOpt = None,
    stdin: StdinOpt = False,
    from_env: FromEnvOpt = None,
    generate: Annotated[
        bool, typer.Option("--generate", help="Make a random value (secrets module).")
    ] = False,
    length: Annotated[int, typer.Option("--length", help="Length of a generated value.", callback=bounded(8, 4096))] = 32,
    expires: ExpiresOpt = None,
    json_mode: JsonOpt = False,
) -> None:
    """A new version becomes current; the previous stays readable for creds.grace_period."""
    from elfctl.services.credentials import vault as svc

    app_, vault = _vault(ctx, json_mode, "rotate")
    value = None if generate and not argv_value else _value(name, stdin, from_env, argv_value)
    info = svc.rotate(
        vault, name, value, team=team, generate_length=length if generate else None, expires=expires
    )
    app_.output.result(info, _info_line("rotated"))


@app.command("check")
def check(ctx: typer.Context, json_mode: JsonOpt = False) -> None:
    """Exit 1 when a credential is expired or past creds.max_age (a CI gate); warn before."""

    app_, vault = _vault(ctx, json_mode, "check")
    from elfctl.services.credentials import checks as credential_checks

    result = credential_checks.check(vault)

    def human(r):
        if not r.findings:
            return f"{r.checked} credential(s): none expired, none near expiry"
        return "\n".join(
            f"{f.status.upper()} {f.name} ({'team ' + f.scope if f.scope else 'global'}): "
            f"{f.reason} {'since' if f.status == 'fail' else 'at'} {f.since}"
            for f in r.findings
        )

    failure = None
    if result.failed:
        from elfctl.errors import OperationFailed

        failure = OperationFailed(f"{result.failed} credential(s) expired or past creds.max_age",
                                  hint="rotate them: `elfctl creds rotate NAME`")
    finish(app_, {"checked": result.checked, "failed": result.failed, "findings": result.findings}
           if app_.output.json else result, human, failure)


@app.command("import")
def import_(
    ctx: typer.Context,
    file: Annotated[str, typer.Argument(help="A .env file.")],
    team: TeamOpt = None,
    json_mode: JsonOpt = False,
) -> None:
    """Store every KEY=VALUE of a .env file (checked as a whole first)."""
    from pathlib import Path

    from elfctl.services.credentials import vault as svc

    app_, vault = _vault(ctx, json_mode, "import")
    result = svc.import_env(vault, Path(file), team=team)
    app_.output.result(
        result,
        lambda r: (
            f"imported {len(r.imported)} credential(s) from {r.file}: "
            f"{', '.join(c.name for c in r.imported)}\n"
            f"{r.file} can now be deleted (e.g. `shred -u {r.file}`)"
        ),
    )


@app.command("run", context_settings={"allow_interspersed_args": False, "ignore_unknown_options": True})
def run(
    ctx: typer.Context,
    command: Annotated[list[str] | None, typer.Argument(help="The command, after `--`.")] = None,
    team: TeamOpt = None,
    json_mode: JsonOpt = False,
) -> None:
    """Run COMMAND with the secrets in its environment (no file written); its exit code is returned."""
    from elfctl.services.credentials import run as credential_run

    _app, vault = _vault(ctx, json_mode, "run")
    code = credential_run.run(vault, list(command or []), team=team)
    raise typer.Exit(code)


@app.command("audit")
def audit(
    ctx: typer.Context,
    team: TeamOpt = None,
    since: Annotated[str | None, typer.Option("--since", help="e.g. 24h, 7d or 2026-01-31.")] = None,
    verify: Annotated[
        bool, typer.Option("--verify", help="Check the HMAC chain; exit 1 if tampered.")
    ] = False,
    json_mode: JsonOpt = False,
) -> None:
    """Every set, read, run, rotate and delete: when, who, where, which credential and version."""
    from elfctl.services.credentials import audit as credential_audit

    app_, vault = _vault(ctx, json_mode, "audit")
    if verify:
        result = credential_audit.audit_verify(vault)
        failure = None
        if not result.ok:
            from elfctl.errors import OperationFailed

            failure = OperationFailed(f"the credential audit log was tampered with ({len(result.problems)} "
                                      "problem(s))", hint="see the problems listed; restore the store from a backup")
        finish(
            app_,
            result,
            lambda r: (
                f"audit log intact: {r.entries} entries, chain and head verified"
                + (f" (the first {r.unverified} were keyed by a lost credential file: links checked, "
                   "content not)" if r.unverified else "")
                if r.ok
                else "audit log TAMPERED:\n" + "\n".join(f"  {p.detail}" for p in r.problems)
            ),
            failure,
        )
        return
    rows = credential_audit.audit_entries(vault, team, since)

    def human(rows):
        from rich.table import Table

        table = Table()
        for col in ("seq", "time", "user@host", "action", "credential", "version", "result", "command"):
            table.add_column(col)
        for r in rows:
            cred = (r["name"] or "") + (f" ({r['scope']})" if r["scope"] else "")
            table.add_row(
                str(r["seq"]),
                r["ts"],
                f"{r['os_user']}@{r['host']}",
                r["action"],
                cred,
                "" if r["version"] is None else str(r["version"]),
                r["result"],
                r["command"],
            )
        return table

    app_.output.result(rows, human)


def _new_file_text(r) -> str:
    lines = [f"started a new credential file {r.file} (recorded in the audit trail); "
             "set ELFCTL_MASTER_KEY to its passphrase from now on"]
    if r.lost:
        names = ", ".join(f"{c.name} ({'team ' + c.scope if c.scope else 'global'})" for c in r.lost)
        lines.append(f"lost with the missing file, set them again with `elfctl creds set`: {names}")
    if r.audit_key_changed:
        lines.append("the audit trail was keyed by the lost file: `creds audit --verify` checks entries "
                     "from the new key on, and only the links of earlier ones")
    return "\n".join(lines)


@app.command("rekey")
def rekey(
    ctx: typer.Context,
    stdin: StdinOpt = False,
    from_env: FromEnvOpt = None,
    new: Annotated[bool, typer.Option(
        "--new", help="Start a new, empty file where the recorded one is missing (audited; its values are lost).",
    )] = False,
    json_mode: JsonOpt = False,
) -> None:
    """Re-encrypt the credential file under a new passphrase (one atomic step), or --new: start over."""
    from elfctl.services.credentials import vault as svc

    app_, vault = _vault(ctx, json_mode, "rekey --new" if new else "rekey")
    if new:
        created = svc.new_file(vault, _value("the new file's passphrase", stdin, from_env, confirm=True))
        app_.output.result(created, _new_file_text)
        return
    result = svc.rekey(vault, _value("the new passphrase", stdin, from_env, confirm=True))
    app_.output.result(
        result,
        lambda r: (
            f"re-encrypted {r.entries} value(s) in {r.file} under the new "
            "passphrase; set ELFCTL_MASTER_KEY to it from now on"
        ),
    )
