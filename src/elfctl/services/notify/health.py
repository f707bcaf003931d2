"""The `notify` health component: alerts that did not go out are a problem people should see."""

from __future__ import annotations

from elfctl.domain.health import Check
from elfctl.services.notify import outbox


def check(store, channel_count: int) -> Check:
    """warn when a channel was disabled by its receiver (410) or deliveries failed; pass otherwise."""
    off = outbox.disabled(store)
    failed = store.query("SELECT COUNT(*) AS n FROM notify_deliveries WHERE state = 'failed'")[0]["n"]
    if off or failed:
        parts = ([f"{len(off)} channel(s) disabled by the receiver (410)"] if off else []) + (
            [f"{failed} failed deliveries"] if failed else [])
        return Check("notify", "warn", int(failed), "failed_deliveries", output="; ".join(parts),
                     hint="`elfctl notify list --failed`; fix the channel, then `elfctl notify retry --enable`")
    return Check("notify", "pass", channel_count, "channels", output=f"{channel_count} channel(s), nothing failed")
