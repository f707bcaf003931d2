"""What the supabase client sends for each call elfctl makes, recorded at the PostgREST-compatible
server and compared with tests/golden/supabase_rest_requests.json: a client upgrade that changes a
request (a header, a parameter's grammar, the body) fails here loudly, before it reaches a real
PostgREST. After a deliberate change: ELFCTL_TEST_UPDATE_GOLDEN=1 rewrites the file; review its diff."""

from __future__ import annotations

import json
import os
from pathlib import Path

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "supabase_rest_requests.json"


def calls(store) -> None:
    """Every kind of request RestStore makes (the services only reach the API through these)."""
    store.select("registry_entries")
    store.select("registry_entries", {"name": "svc-a", "owner": None, "kind": ["team", "agent,x"],
                                      "ttl_s": 30.5, "source": True},
                 columns="name,kind", order="kind.desc,name", limit=5)
    store.upsert("registry_capabilities", [{"capability": "chat", "name": "svc-a"}, {"capability": "x", "name": "b"}],
                 on_conflict="capability,name")
    store.upsert("registry_capabilities", [{"capability": "chat", "name": "svc-a"}],
                 on_conflict="capability,name", ignore_duplicates=True)
    store.upsert("registry_entries", [{"name": "n1", "kind": "service", "heartbeat_at": "t", "registered_at": "t"},
                                      {"name": "n2", "kind": "service", "heartbeat_at": "t", "registered_at": "t",
                                       "owner": "o"}], on_conflict="name")
    store.call("elfctl_key_lookup", {"p_prefix": "abc"})
    store.call("elfctl_settle", {"p_ids": ["r-1"]})
    store.call("elfctl_record_usage", {"p_rows": [{"request_id": "q"}][:0]})  # an empty jsonb list
    store.call("elfctl_usage_rows", {"p_team": None, "p_since": "2026-03-01", "p_until": None,  # an export page
                                     "p_after_ts": "2026-03-01T00:00:00.000+00:00", "p_after_id": 7, "p_limit": 1000})
    store.call("elfctl_queue_claim", {"p_id": "q-1", "p_now": "t0", "p_until": "t1", "p_max": 5})
    store.tables()


def test_the_client_sends_what_it_sent_when_the_golden_file_was_recorded(rest):
    from elfctl.adapters.supabase_rest import RestStore

    store = RestStore(rest.url, rest.service_key)
    before = len(rest.requests)
    try:
        calls(store)
    finally:
        store.close()
    sent = rest.requests[before:]
    for r in sent:
        # postgrest-py builds `columns` from a set: its order follows str hashing, so compare it sorted
        r["query"] = [[k, ",".join(sorted(v.split(","))) if k == "columns" else v] for k, v in r["query"]]
    if os.environ.get("ELFCTL_TEST_UPDATE_GOLDEN"):
        GOLDEN.write_text(json.dumps(sent, indent=1) + "\n")
    assert sent == json.loads(GOLDEN.read_text()), "the supabase client's requests changed: see the diff"
