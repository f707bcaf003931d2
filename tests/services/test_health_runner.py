import threading
import time

from elfctl.domain.health import Check
from elfctl.errors import Unreachable
from elfctl.services.platform.health import memory_probe, run_checks


def test_worst_status_wins_and_errors_become_fail_rows():
    def boom():
        raise Unreachable("registry at 127.0.0.1:5000 unreachable", hint="start it")

    report = run_checks({"a": lambda: Check("a", "pass"), "b": lambda: Check("b", "warn"), "c": boom}, 5)
    assert report.status == "fail" and report.exit_code() == 1
    c = [x for x in report.checks if x.component == "c"][0]
    assert c.output.startswith("registry at") and c.hint == "start it"
    assert report.to_data()["checks"]["b"][0]["status"] == "warn"


def test_a_hung_probe_is_a_fail_and_does_not_block_the_others():
    gate = threading.Event()
    report = run_checks({"hung": lambda: gate.wait(60) and Check("hung", "pass"),
                         "quick": lambda: Check("quick", "pass")}, 0.3)
    gate.set()
    status = {c.component: c.status for c in report.checks}
    assert status == {"hung": "fail", "quick": "pass"}


def test_memory_probe_reads_meminfo(tmp_path):
    f = tmp_path / "meminfo"
    f.write_text("MemTotal:       1000000 kB\nMemFree:         10000 kB\nMemAvailable:    20000 kB\n")
    check = memory_probe(0.10, 0.03, meminfo=str(f))()
    assert check.status == "fail" and check.observed_value == 2.0
    time.sleep(0)
