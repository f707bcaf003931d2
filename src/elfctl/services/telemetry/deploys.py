"""One span per deploy (or rollback), `deploy {team}`, each state it passes through an event on it, so a
slow rollout shows which phase took the time. Ends at the deploy's final state; ERROR when it failed or
was rolled back (error.type the state, the reason as the status description)."""

from __future__ import annotations

from elfctl.redact import scrub

FINAL = ("switched", "failed", "rolled_back")


class DeploySpan:
    def __init__(self, pipeline, team: str, revision: int, target: str, image: str):
        self.span = pipeline.start(f"deploy {team}", {
            "elfctl.team": team,
            "elfctl.revision": revision,
            "elfctl.deploy.target": target,
            "elfctl.deploy.image": image,
        }, kind="internal")
        self.ended = False

    def state(self, state: str, error: str | None = None) -> None:
        if self.ended:
            return
        self.span.event(state, {"elfctl.deploy.error": scrub(error)[:500] if error else None})
        if state in FINAL:
            self.span.set({"elfctl.deploy.state": state})
            if state != "switched":
                self.span.fail(state, scrub(error or "")[:1000])
            self._end()

    def end(self, error: str | None = None) -> None:
        """A deploy that left without reaching a final state (interrupted, its lease lost)."""
        if not self.ended:
            self.span.set({"elfctl.deploy.state": "interrupted"})
            self.span.fail("interrupted", scrub(error or "")[:1000])
            self._end()

    def _end(self) -> None:
        self.ended = True
        self.span.end()
