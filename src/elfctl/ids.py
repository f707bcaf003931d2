"""Unique ids for request and reservation rows without a system call per id.

`uuid.uuid4()` reads os.urandom, a system call that releases the GIL; on the LLM call path another
thread (litellm's post-call logger, the usage writer) then holds the interpreter for up to a
switch interval. An id here is 16 random hex digits drawn once per process (again after a fork)
followed by a 16-digit counter: 32 hex digits like uuid4().hex, unique across processes.
"""

from __future__ import annotations

import itertools
import os
import threading

_lock = threading.Lock()
_pid = 0
_prefix = ""
_counter = itertools.count()


def new_id() -> str:
    global _pid, _prefix, _counter
    if _pid != os.getpid():
        with _lock:
            if _pid != os.getpid():
                _prefix, _counter = os.urandom(8).hex(), itertools.count()
                _pid = os.getpid()
    return f"{_prefix}{next(_counter):016x}"
