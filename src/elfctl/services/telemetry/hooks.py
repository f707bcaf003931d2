"""The telemetry hooks the call path and deploy call, and OFF, what they are when telemetry is not on:
the call path's own objects handed back unchanged, so an untraced call runs exactly as before and
nothing from opentelemetry is imported.

    trace.walk(driver, policy, request_id, chain, kwargs) -> the driver (Caller._drive), wrapped
    trace.attempt(model, fn) -> fn, wrapped (one call of one model: each retry, each fallback)
    trace.finished(row) -> the call's usage row, as recorded (cost, tokens, model that answered)
    trace.deploy(team, revision, target, image) -> .state(state, error) / .end(error)
"""

from __future__ import annotations


class _NoDeploy:
    __slots__ = ()

    def state(self, state: str, error: str | None = None) -> None:
        pass

    def end(self, error: str | None = None) -> None:
        pass


NO_DEPLOY = _NoDeploy()


class Off:
    enabled = False

    def walk(self, driver, policy, request_id: str, chain: list[str], kwargs: dict):
        return driver

    def attempt(self, model: str, fn):
        return fn

    def finished(self, row) -> None:
        pass

    def deploy(self, team: str, revision: int, target: str, image: str):
        return NO_DEPLOY


OFF = Off()
