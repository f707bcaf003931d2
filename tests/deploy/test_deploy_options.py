"""`deploy --tag`, `--no-build`, `--no-wait` and `logs --follow` on the real engine and registry."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

from tests.deploy.conftest import make_team, set_version
from tests.deploy.test_deploy_flow import _deploy, _get, _port

# Healthy at first, failing a few seconds after it starts: the gate passes, the soak window sees it.
FLIPS = """\
FROM {base}
COPY www /www
EXPOSE 8080
CMD ["sh", "-c", "(sleep 6; echo '{{\\"status\\": \\"fail\\"}}' > /www/health) & exec httpd -f -v -p 8080 -h /www"]
"""


def test_tags_and_no_build_redeploy_a_pushed_image(project, store_url, docker_env, team_name, engine):
    env = {**docker_env, "ELFCTL_STORE_URL": store_url}
    folder = make_team(project, env, team_name, page="a")
    proc, a = _deploy(project, env, team_name, "--tag", "release-a")
    assert proc.returncode == 0, proc.stderr
    assert a["image"].endswith(f"/{team_name}:release-a") and a["built"]
    port = _port(engine, env, team_name)

    set_version(folder, "b")
    proc, b = _deploy(project, env, team_name, "--tag", "release-b")
    assert proc.returncode == 0 and b["state"] == "switched" and _get(port) == "b"

    # A tag that was never built or pushed: a clear error, and nothing changes.
    proc, missing = _deploy(project, env, team_name, "--no-build", "--tag", "release-z")
    assert proc.returncode == 2 and "--no-build" in proc.stderr and "release-z" in proc.stderr
    assert _get(port) == "b"

    # Back to the pushed release-a, built from nothing even though the folder now holds b.
    engine.remove_image(a["image"])
    proc, again = _deploy(project, env, team_name, "--no-build", "--tag", "release-a")
    assert proc.returncode == 0, proc.stderr
    assert again["state"] == "switched" and not again["built"] and again["image"] == a["image"]
    assert _get(port) == "a"


def test_no_wait_returns_at_the_switch_and_wait_soaks(project, store_url, docker_env, team_name, engine):
    env = {**docker_env, "ELFCTL_STORE_URL": store_url}
    folder = make_team(project, env, team_name, page="good")
    proc, first = _deploy(project, env, team_name)
    assert proc.returncode == 0, proc.stderr
    port = _port(engine, env, team_name)

    (folder / "Dockerfile").write_text(FLIPS.format(base=env["ELFCTL_DEPLOY_BASE_IMAGE"]))
    spec = (folder / "team.yaml").read_text().replace("soak_s: 0.6", "soak_s: 12")
    (folder / "team.yaml").write_text(spec)

    # --wait (the default) keeps probing after the switch: the flip is caught, the old one is back.
    set_version(folder, "flips-1")
    proc, soaked = _deploy(project, env, team_name)
    assert proc.returncode == 1 and soaked["state"] == "rolled_back" and "verification window" in soaked["reason"]
    assert _get(port) == "good"

    # --no-wait returns once switched: the version that will flip is left serving.
    set_version(folder, "flips-2")
    proc, quick = _deploy(project, env, team_name, "--no-wait")
    assert proc.returncode == 0, proc.stderr
    assert quick["state"] == "switched" and _get(port) == "flips-2"


def test_logs_follow_prints_new_lines_until_interrupted(project, store_url, docker_env, team_name, engine):
    env = {**docker_env, "ELFCTL_STORE_URL": store_url}
    make_team(project, env, team_name, page="followed")
    proc, _ = _deploy(project, env, team_name)
    assert proc.returncode == 0, proc.stderr
    port = _port(engine, env, team_name)

    follow = subprocess.Popen([sys.executable, "-m", "elfctl", "logs", team_name, "--follow", "--tail", "0"],
                              cwd=project, env={**os.environ, **env},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(follow.stdout), daemon=True)
    reader.start()
    try:
        time.sleep(2)  # --tail 0: nothing yet; the requests below must show up as they happen
        assert lines == []
        # keep asking until a line shows: on a loaded machine `logs --follow` may attach after the first request
        deadline = time.monotonic() + 30
        while not any("response:200" in ln for ln in lines) and time.monotonic() < deadline:
            assert _get(port) == "followed"  # busybox httpd -v logs each request as `<peer>: response:200`
            time.sleep(0.5)
        assert any("response:200" in ln for ln in lines), lines
    finally:
        follow.send_signal(signal.SIGINT)
        _out, err = follow.communicate(timeout=30)
    assert follow.returncode == 0 and "Traceback" not in err and "error" not in err
