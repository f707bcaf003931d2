"""The gateway process's log lines carry UTC times, whatever the host's time zone."""

import datetime as dt
import os
import re
import subprocess
import sys

LOG_ONE = ("from elfctl.services.gateway import asgi; import logging; asgi.log_to_stderr(); "
           "logging.getLogger('elfctl.gateway').warning('provider slow')")


def test_gateway_log_times_are_utc_on_a_host_in_another_zone():
    before = dt.datetime.now(dt.UTC).replace(microsecond=0)
    proc = subprocess.run([sys.executable, "-c", LOG_ONE], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "TZ": "Asia/Tokyo"})  # UTC+9 all year: 9 h off if local
    after = dt.datetime.now(dt.UTC)
    assert proc.returncode == 0, proc.stderr
    m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3})Z WARNING elfctl.gateway: provider slow$", proc.stderr.strip())
    assert m, proc.stderr
    at = dt.datetime.fromisoformat(m[1]).replace(tzinfo=dt.UTC)
    assert before <= at <= after
