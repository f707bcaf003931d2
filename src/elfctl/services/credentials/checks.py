"""`creds check` and the `credentials` health probe: expiry and maximum age, from metadata only
(no passphrase, no backend access), so CI gates and `elfctl health` can run anywhere."""

from __future__ import annotations

from dataclasses import dataclass, field

from elfctl.domain import clock
from elfctl.domain import credentials as rules
from elfctl.domain.health import Check
from elfctl.domain.notify import Event
from elfctl.services.credentials.vault import Vault, list_
from elfctl.services.notify import outbox


@dataclass
class CheckResult:
    checked: int
    findings: list[rules.Finding] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return any(f.status == "fail" for f in self.findings)


def check(vault: Vault) -> CheckResult:
    """Expired or past max age -> fail; within creds.warn_before of either -> warn. Metadata only."""
    rows = [dict(r.__dict__) for r in list_(vault)]
    result = CheckResult(len(rows), rules.expiry_findings(rows, clock.now(), vault.max_age, vault.warn_before))
    for f in result.findings:  # one alert per credential, finding and date (names only, never a value)
        where = f" ({f.scope})" if f.scope else ""
        outbox.emit_quietly(vault.store, Event(
            f"credential.{f.reason.replace(' ', '_')}", f"credential {f.name}{where} {f.reason} {f.since[:10]}",
            dedupe_key=f"credential:{f.name}:{f.scope}:{f.reason}:{f.since}",
            severity="critical" if f.status == "fail" else "warning",
            details={"credential": f.name, "scope": f.scope or "global", "when": f.since,
                     "fix": f"elfctl creds rotate {f.name}"}))
    return result


COMPONENT = "creds"  # the `elfctl health` component, named like the command group


def health_check(vault: Vault):
    """For `elfctl health`: expired / past max age -> fail, expiring soon -> warn. Metadata only."""
    result = check(vault)
    bad = [f for f in result.findings if f.status == "fail"] or result.findings
    if not bad:
        return Check(
            COMPONENT,
            "pass",
            result.checked,
            "credentials",
            output=f"{result.checked} credential(s), none expired or near expiry",
        )
    listed = ", ".join(
        f"{f.name}{' (' + f.scope + ')' if f.scope else ''} {f.reason} {f.since}" for f in bad[:5]
    )
    return Check(
        COMPONENT,
        "fail" if result.failed else "warn",
        len(bad),
        "credentials",
        output=listed + (f" and {len(bad) - 5} more" if len(bad) > 5 else ""),
        hint="rotate them: `elfctl creds rotate NAME` (`elfctl creds check` lists all)",
    )
