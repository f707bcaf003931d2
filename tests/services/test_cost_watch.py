"""The dashboard watch loop (services/cost/watch.py): a full build when today's rollup moved (polled every
0.25 s) and at the interval, never a build per poll; the marker itself on real SQLite and Postgres stores.
The terminal and gateway end of it: tests/gateway/test_dashboard_watch.py."""

from __future__ import annotations

import datetime as dt

from elfctl.services.cost import watch


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        assert 0 <= s <= watch.POLL_S
        self.t += s


def run(markers: list, interval: float, polls: int):
    """Builds drawn, by time, over `polls` polls while the marker takes the given values in turn."""
    clock, drawn, seen = Clock(), [], iter(markers)
    last = [markers[0]]

    def changed():
        last[0] = next(seen, last[0])
        return last[0]

    watch.watch(lambda: clock.t, drawn.append, changed, interval, clock=clock, sleep=clock.sleep,
                stop=lambda: clock.t >= polls * watch.POLL_S - 1e-9)
    return drawn


def test_a_moved_marker_is_drawn_at_the_next_poll_and_a_still_one_waits_for_the_interval():
    # marker read once before the first draw, then once a poll: it moves at the 4th poll (t=1.0)
    drawn = run(["a", "a", "a", "a", "b"], interval=60, polls=20)
    assert drawn == [0.0, 1.0]


def test_the_interval_still_draws_what_the_marker_cannot_see():
    drawn = run(["a"], interval=2.0, polls=20)  # 5 s, nothing moved
    assert drawn == [0.0, 2.0, 4.0]


def test_the_marker_is_todays_rollup_of_one_team_or_all(open_store, store_url):
    from elfctl import config
    from elfctl.bootstrap import migrations_dir
    from elfctl.services.platform import migrate

    store = open_store(store_url)
    migrate.migrate(store, migrations_dir(config.load()))
    now = dt.datetime(2026, 3, 4, 12, tzinfo=dt.UTC)
    assert watch.marker(store, None, now) == ("2026-03-04", 0, 0)
    store.upsert("daily_cost_summary", [
        {"day": "2026-03-04", "team": "a", "model": "m1", "calls": 2, "cost_nanousd": 10},
        {"day": "2026-03-04", "team": "b", "model": "m1", "calls": 1, "cost_nanousd": 5},
        {"day": "2026-03-03", "team": "a", "model": "m1", "calls": 7, "cost_nanousd": 70},
    ], on_conflict="day,team,model")
    assert watch.marker(store, None, now) == ("2026-03-04", 3, 15)
    assert watch.marker(store, "a", now) == ("2026-03-04", 2, 10)
    assert watch.marker(store, "a", now + dt.timedelta(days=1)) == ("2026-03-05", 0, 0)  # midnight moves it
