"""`registry import-card --jwks`: an A2A v1.0 card's JWS signatures verified with a2a-sdk's verifier
against a JWKS file or URL. Cards signed here with a2a-sdk's own signer and a real EC P-256 key, served
over real HTTP; a wrong key, a card changed after signing, an unsigned card and a bad JWKS are refused
(exit 2, nothing registered), and `registry show` says what was verified."""

from __future__ import annotations

import json

import pytest

from tests.registry.test_registry_cli import CARD, _Cards, card_server, cli, names  # noqa: F401 (card_server: a fixture)


def _key(kid: str):
    """(private key, its public JWK) of a fresh EC P-256 key."""
    from cryptography.hazmat.primitives.asymmetric import ec
    from jwt.algorithms import ECAlgorithm

    private = ec.generate_private_key(ec.SECP256R1())
    jwk = json.loads(ECAlgorithm.to_jwk(private.public_key()))
    return private, {**jwk, "kid": kid, "alg": "ES256", "use": "sig"}


def _signed(card: dict, private, kid: str) -> dict:
    """`card` with a signature made by a2a-sdk's signer (what a provider using the SDK publishes)."""
    from a2a.types import AgentCard
    from a2a.utils.signing import create_agent_card_signer
    from google.protobuf.json_format import MessageToDict, ParseDict

    message = ParseDict(card, AgentCard())
    create_agent_card_signer(private, {"kid": kid, "alg": "ES256", "jku": None, "typ": "JOSE"})(message)
    return MessageToDict(message)


@pytest.fixture
def keys(project):
    private, public = _key("k1")
    _other, stranger = _key("k1")  # same kid, another key: a JWKS that is not the provider's
    good, wrong = project / "jwks.json", project / "wrong-jwks.json"
    good.write_text(json.dumps({"keys": [public]}))
    wrong.write_text(json.dumps({"keys": [stranger]}))
    return private, good, wrong, public


def test_a_signed_card_is_verified_with_the_providers_jwks(reg_store, project, card_server, keys):  # noqa: F811
    server, base = card_server
    private, good, _wrong, public = keys
    signed = _signed(CARD, private, "k1")
    assert signed["signatures"][0]["protected"]
    _Cards.routes = {"/a/.well-known/agent-card.json": json.dumps(signed).encode(),
                     "/jwks.json": json.dumps({"keys": [public]}).encode()}
    proc = cli("registry", "import-card", f"{base}/a", "--jwks", str(good), "--json", project=project)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["card_signature"] == {"verified": True,
                                                         "note": f"verified: signature with key k1 of {good}"}
    shown = json.loads(cli("registry", "show", "research-agent", "--json", project=project).stdout)
    assert shown["card_signature"]["verified"] is True and shown["card"]["signatures"] == signed["signatures"]
    human = cli("registry", "show", "research-agent", project=project).stdout
    assert f"card signature: verified: signature with key k1 of {good}" in human
    # the JWKS at a URL (where providers publish it) serves as well
    again = cli("registry", "import-card", f"{base}/a", "--jwks", f"{base}/jwks.json", "--name", "by-url", project=project)
    assert again.returncode == 0 and "verified: signature with key k1" in again.stdout, again.stderr


def test_a_bad_signature_is_refused_and_nothing_registered(reg_store, project, card_server, keys):  # noqa: F811
    _server, base = card_server
    private, good, wrong, _public = keys
    signed = _signed(CARD, private, "k1")
    tampered = {**signed, "description": "Finds sources, and sends them elsewhere"}
    _Cards.routes = {"/a/.well-known/agent-card.json": json.dumps(signed).encode(),
                     "/t/.well-known/agent-card.json": json.dumps(tampered).encode(),
                     "/u/.well-known/agent-card.json": json.dumps(CARD).encode()}
    other_key = cli("registry", "import-card", f"{base}/a", "--jwks", str(wrong), project=project)
    assert other_key.returncode == 2
    assert f"signature does not verify with --jwks {wrong}" in other_key.stderr and "Traceback" not in other_key.stderr
    changed = cli("registry", "import-card", f"{base}/t", "--jwks", str(good), project=project)
    assert changed.returncode == 2 and "does not verify" in changed.stderr
    unsigned = cli("registry", "import-card", f"{base}/u", "--jwks", str(good), project=project)
    assert unsigned.returncode == 2 and "has no signatures, and --jwks asks" in unsigned.stderr
    missing = cli("registry", "import-card", f"{base}/a", "--jwks", str(project / "nosuch.json"), project=project)
    assert missing.returncode == 2 and f"--jwks {project / 'nosuch.json'}: cannot read" in missing.stderr
    (project / "empty.json").write_text('{"keys": []}')
    empty = cli("registry", "import-card", f"{base}/a", "--jwks", str(project / "empty.json"), project=project)
    assert empty.returncode == 2 and "no keys" in empty.stderr
    assert names(project) == []


def _forged(card: dict, alg: str, secret: bytes) -> dict:
    """A signature an attacker can make without the private key: alg none, or HMAC keyed with the
    public JWK itself (algorithm confusion)."""
    import base64
    import hashlib
    import hmac

    from a2a.types import AgentCard
    from a2a.utils.signing import _canonicalize_agent_card
    from google.protobuf.json_format import ParseDict

    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    payload = _canonicalize_agent_card(ParseDict(card, AgentCard())).encode()
    protected = b64(json.dumps({"alg": alg, "kid": "k1", "typ": "JOSE"}).encode())
    signed = f"{protected}.{b64(payload)}".encode()
    signature = "" if alg == "none" else b64(hmac.new(secret, signed, hashlib.sha256).digest())
    return {**card, "signatures": [{"protected": protected, "signature": signature}]}


def test_forged_signatures_are_refused(reg_store, project, card_server, keys):  # noqa: F811
    _server, base = card_server
    _private, good, _wrong, public = keys
    _Cards.routes = {"/n/.well-known/agent-card.json": json.dumps(_forged(CARD, "none", b"")).encode(),
                     "/h/.well-known/agent-card.json": json.dumps(
                         _forged(CARD, "HS256", json.dumps(public).encode())).encode()}
    for path in ("n", "h"):
        proc = cli("registry", "import-card", f"{base}/{path}", "--jwks", str(good), project=project)
        assert proc.returncode == 2 and "does not verify" in proc.stderr, (path, proc.stderr)
    assert names(project) == []


def test_without_jwks_a_signed_card_is_registered_as_not_verified(reg_store, project, card_server, keys):  # noqa: F811
    _server, base = card_server
    private, _good, _wrong, _public = keys
    _Cards.routes = {"/a/.well-known/agent-card.json": json.dumps(_signed(CARD, private, "k1")).encode(),
                     "/u/.well-known/agent-card.json": json.dumps({**CARD, "name": "Plain Agent"}).encode()}
    assert cli("registry", "import-card", f"{base}/a", project=project).returncode == 0
    assert cli("registry", "import-card", f"{base}/u", project=project).returncode == 0
    shown = json.loads(cli("registry", "show", "research-agent", "--json", project=project).stdout)
    assert shown["card_signature"] == {"verified": False, "note": "signed, not verified (no --jwks at import)"}
    assert "card signature: unsigned" in cli("registry", "show", "plain-agent", project=project).stdout
