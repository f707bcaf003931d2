"""A deploy that fails queues an alert with the record, and the CLI's detached sender delivers it
to Slack after `elfctl deploy` returned (real dockerd, registry, loopback receiver)."""

from __future__ import annotations

import json

import pytest

from tests.conftest import run_elfctl
from tests.deploy.conftest import make_team
from tests.webhook_server import WebhookServer

pytestmark = pytest.mark.docker


def test_a_failed_deploy_reaches_slack_with_its_reason(project, docker_env, team_name):
    hook = WebhookServer().start()
    try:
        env = {**docker_env, "SLACK_WEBHOOK_URL": hook.url("/services/T9/B9/deploysecret")}
        make_team(project, env, team_name, health_doc='{"status": "fail", "output": "db down"}')
        proc = run_elfctl("deploy", team_name, "--json", cwd=project, env=env, timeout=180)
        assert proc.returncode == 1 and json.loads(proc.stdout)["state"] == "failed"
        assert hook.wait_for(1, timeout=30), "no alert arrived"
        msg = hook.received[0]["json"]
        assert f"deploy of {team_name} revision 1 failed" in msg["text"]
        fields = json.dumps(msg["blocks"])
        assert "db down" in fields and "deploysecret" not in fields
        listed = json.loads(run_elfctl("notify", "list", "--json", cwd=project, env=env).stdout)
        assert [(e["kind"], e["team"], e["deliveries"][0]["state"]) for e in listed["events"]] == [
            ("deploy.failed", team_name, "sent")]
    finally:
        hook.stop()
