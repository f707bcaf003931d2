from elfctl.domain.health_gate import ReplicaGate, classify


def test_classify_status_codes_and_ietf_json():
    assert classify(200, b"ok")[0] == "pass"
    assert classify(200, b'{"status": "pass"}')[0] == "pass"
    assert classify(200, b'{"status": "warn", "output": "slow"}') == (
        "warn",
        "health JSON status 'warn': slow",
    )
    assert classify(200, b'{"status": "fail"}')[0] == "fail"
    assert classify(503, b'{"status": "pass"}') == ("fail", "HTTP 503")
    assert classify(None, None)[0] == "fail"
    assert classify(200, b"[1, 2]")[0] == "pass"


def test_gate_needs_consecutive_successes_and_counts_failures():
    g = ReplicaGate(success_threshold=2, failure_threshold=2)
    g.record("fail", "no answer", refused=True)  # still starting: not counted
    assert g.failures == 0 and not g.ready
    g.record("pass", "ok")
    g.record("fail", "HTTP 500")
    assert g.successes == 0 and not g.ready
    g.record("pass", "ok")
    g.record("warn", "slow")
    assert g.ready and g.warnings == ["slow"]
    g.record("fail", "HTTP 500")
    g.record("fail", "no answer", refused=True)  # after answering once, refusals count
    assert g.failed
