"""`make test` on a laptop fails, as CI does, when a service the tests need is missing; skipping is an
explicit opt-out (ELFCTL_TEST_ALLOW_SKIP=1, ignored under CI=true), and whatever did not run is named
in the run's summary. Checked on a throw-away test file run by a real pytest in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import REPO

NEEDS_A_SERVICE = """
from tests.conftest import unavailable

def test_needs_a_service():
    unavailable("frobnicator is not installed (apt-get install frobnicator)")

def test_plain():
    assert True
"""

REAL_CLUSTER = """
import pytest

@pytest.mark.kubernetes_real
@pytest.mark.skipif(True, reason="set ELFCTL_TEST_KUBECONFIG to run against a real cluster")
def test_on_a_cluster():
    pass
"""


def _pytest(tmp_path, body: str, **env: str) -> subprocess.CompletedProcess:
    (tmp_path / "conftest.py").write_text("from tests.conftest import pytest_terminal_summary  # noqa: F401\n")
    (tmp_path / "pytest.ini").write_text("[pytest]\nmarkers =\n    kubernetes_real: a real cluster\n")
    (tmp_path / "test_it.py").write_text(body)
    clean = {k: v for k, v in os.environ.items() if k not in ("CI", "ELFCTL_TEST_ALLOW_SKIP")}
    clean["PYTHONPATH"] = os.pathsep.join([str(REPO), clean.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
                           str(tmp_path)], cwd=tmp_path, env={**clean, **env}, capture_output=True, text=True,
                          timeout=60)


def test_a_missing_service_fails_the_run_on_a_laptop(tmp_path):
    proc = _pytest(tmp_path, NEEDS_A_SERVICE)
    assert proc.returncode == 1, proc.stdout
    assert "1 failed, 1 passed" in proc.stdout
    assert "frobnicator is not installed" in proc.stdout and "ELFCTL_TEST_ALLOW_SKIP=1" in proc.stdout


def test_allow_skip_skips_and_the_summary_says_what_did_not_run(tmp_path):
    proc = _pytest(tmp_path, NEEDS_A_SERVICE, ELFCTL_TEST_ALLOW_SKIP="1")
    assert proc.returncode == 0, proc.stdout
    assert "1 passed, 1 skipped" in proc.stdout
    assert "NOT RUN: test_it.py::test_needs_a_service: service unavailable" in proc.stdout
    assert "frobnicator is not installed" in proc.stdout


def test_ci_ignores_the_opt_out(tmp_path):
    proc = _pytest(tmp_path, NEEDS_A_SERVICE, ELFCTL_TEST_ALLOW_SKIP="1", CI="true")
    assert proc.returncode == 1, proc.stdout
    assert "required service unavailable in CI: frobnicator" in proc.stdout


def test_real_cluster_tests_are_named_as_not_run(tmp_path):
    proc = _pytest(tmp_path, REAL_CLUSTER)
    assert proc.returncode == 0, proc.stdout
    assert "NOT RUN: 1 real-cluster test(s) (marker kubernetes_real): set ELFCTL_TEST_KUBECONFIG" in proc.stdout


def test_nothing_skipped_says_nothing(tmp_path):
    proc = _pytest(tmp_path, "def test_ok():\n    pass\n")
    assert proc.returncode == 0 and "NOT RUN" not in proc.stdout and "did not run" not in proc.stdout
