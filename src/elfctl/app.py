"""The context object of one run: configuration, output, and adapters built on first use."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from elfctl.output import Output

if TYPE_CHECKING:  # config (tomllib, difflib) is imported when a command first reads it, not for --help
    from elfctl.config import Config


class App:
    def __init__(
        self,
        output: Output,
        profile: str | None = None,
        overrides: dict[str, Any] | None = None,
        cwd: Path | None = None,
    ):
        self.output = output
        self._profile = profile
        self._overrides = overrides or {}
        self._cwd = cwd
        self._closers: list = []

    @cached_property
    def config(self) -> Config:
        from elfctl import config as config_mod

        return config_mod.load(cwd=self._cwd, profile=self._profile, overrides=self._overrides)

    @cached_property
    def store(self):
        from elfctl.bootstrap import open_store

        store = open_store(self.config)
        self._closers.append(store.close)
        return store

    @property
    def migrations_dir(self) -> Path:
        from elfctl.bootstrap import migrations_dir

        return migrations_dir(self.config)

    @property
    def teams_dir(self) -> Path:
        return self.config.path("teams.dir")

    @cached_property
    def docker(self):
        from elfctl.bootstrap import docker_engine

        engine = docker_engine(self.config)
        self._closers.append(engine.close)
        return engine

    @cached_property
    def registry(self):
        from elfctl.bootstrap import registry

        return registry(self.config)

    @cached_property
    def target(self):
        from elfctl import bootstrap

        if self.config.get("deploy.target") != "kubernetes":
            return bootstrap.deploy_target(self.config, self.docker)
        from elfctl.adapters.team_files import discover, load
        from elfctl.services.deploy.app import resolve_secrets

        target = bootstrap.kubernetes_target(
            self.config,
            teams=lambda: [load(p) for p in discover(self.teams_dir)],
            secret_values=lambda spec: resolve_secrets(self, spec),  # credential store, then environment
            progress=self.output.info,
        )
        self._closers.append(target.cluster.close)
        return target

    @cached_property
    def prices(self):
        from elfctl.bootstrap import price_book

        return price_book(self.config)

    @cached_property
    def llm_caller(self):
        from elfctl.bootstrap import llm_caller

        caller = llm_caller(self.config, self.store)
        self._closers.append(caller.recorder.close)  # what is queued is recorded before the store closes
        return caller

    @property
    def webhook_post(self):
        """`post(url, body, headers, timeout)` for alert deliveries."""
        from elfctl.bootstrap import webhook_poster

        return webhook_poster()

    @cached_property
    def gateway_caller(self):
        from elfctl.bootstrap import gateway_caller

        caller = gateway_caller(self.config, self.store)
        self._closers.append(caller.recorder.close)
        # uvicorn re-raises SIGTERM after its graceful shutdown, so atexit never runs in a gateway:
        # the spans it holds are exported here, at the lifespan's end, or lost.
        pipeline = getattr(caller.trace, "pipeline", None)
        if pipeline is not None:
            self._closers.append(lambda: pipeline.flush(3.0))
        return caller

    @cached_property
    def telemetry(self):
        """Tracing hooks (services/telemetry): OFF, importing nothing, unless telemetry is configured."""
        from elfctl.bootstrap import telemetry

        return telemetry(self.config, self.store if self._telemetry_on() else None)

    def _telemetry_on(self) -> bool:
        from elfctl.services.telemetry.settings import from_config

        return from_config(self.config).enabled

    def vault(self, command: str, prompt=None):
        """The credentials Vault, its reads and changes audited as `command`. `prompt(new_file)`
        asks for the credential file's passphrase (a terminal), when nothing else provides it."""
        from elfctl.bootstrap import vault

        return vault(self.config, self.store, self.teams_dir, command, prompt)

    def override(self, key: str, value: Any) -> None:
        """A flag given after the root callback (e.g. `deploy --target`), before the config is read."""
        if value is not None:
            self._overrides[key] = value
            self.__dict__.pop("config", None)
            self.__dict__.pop("target", None)

    def close(self) -> None:
        for close in reversed(self._closers):
            try:
                close()
            except Exception:
                pass
        self._closers.clear()
