"""An A2A agent card's JWS signatures (A2A v1.0 `signatures`: RFC 7515 over the card's RFC 8785
canonical form, `signatures` left out) checked with a2a-sdk's own verifier and PyJWT, against the keys
of a JWKS the operator names (a file or an http(s) URL). A signature's `jku` header is never followed:
the card does not get to choose the keys it is checked with. Errors become ElfErrors here."""

from __future__ import annotations

import json
from pathlib import Path

from elfctl.errors import InputError

# Public-key algorithms only: with a published JWKS an HMAC (HS*) "key" would be public, and "none" is
# no signature at all. Naming them also stops algorithm confusion (RFC 8725, 3.1).
ALGORITHMS = ["ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "EdDSA"]
MAX_BYTES = 1 << 20


def load_jwks(source: str, timeout_s: float) -> dict:
    """The JWKS `--jwks` names: a JSON {"keys": [...]} file, or one served at an http(s) URL."""
    if source.startswith(("http://", "https://")):
        from elfctl.adapters import agent_cards

        # ("",): the URL itself (agent_cards.fetch tries well-known paths under a base URL otherwise)
        _url, doc = agent_cards.fetch(source, ("",), timeout_s=timeout_s, what="JWKS")
    else:
        try:
            with Path(source).open("rb") as fh:
                raw = fh.read(MAX_BYTES + 1)
        except OSError as exc:
            raise InputError(f"--jwks {source}: cannot read ({exc.strerror})",
                             hint="give a JWKS file ({\"keys\": [...]}) or its http(s) URL") from None
        if len(raw) > MAX_BYTES:
            raise InputError(f"--jwks {source}: larger than 1 MiB", hint="is this a JWKS?")
        try:
            doc = json.loads(raw)
        except ValueError as exc:
            raise InputError(f"--jwks {source}: not JSON ({exc})", hint="a JWKS is {\"keys\": [{...}, ...]}") from None
    keys = doc.get("keys") if isinstance(doc, dict) else None
    if not isinstance(keys, list) or not keys or not all(isinstance(k, dict) for k in keys):
        raise InputError(f"--jwks {source}: no keys (a JWKS is {{\"keys\": [{{...}}, ...]}})",
                         hint="give the agent provider's published JWKS")
    return doc


def verify(card: dict, jwks: dict, source: str) -> str:
    """The kid of a signature on `card` that verifies with a key of `jwks` (a2a-sdk: one valid
    signature suffices); InputError when none does, naming the card and the JWKS."""
    try:
        import jwt
        from a2a.types import AgentCard
        from a2a.utils.signing import SignatureVerificationError, create_signature_verifier
        from google.protobuf.json_format import ParseDict, ParseError
    except ImportError:
        raise InputError("checking agent card signatures needs a2a-sdk with PyJWT",
                         hint="pip install 'a2a-sdk[signing]>=1.0,<2' (or elfctl[a2a])") from None

    keys: dict[str | None, dict] = {k.get("kid"): k for k in jwks["keys"]}
    asked: list[str | None] = []

    def key_for(kid: str | None, _jku: str | None):
        asked.append(kid)
        jwk = keys.get(kid) if kid is not None else (next(iter(keys.values())) if len(keys) == 1 else None)
        if jwk is None:
            raise jwt.exceptions.PyJWKError(f"no key {kid!r} in the JWKS")
        return jwt.PyJWK(jwk)  # a malformed key raises PyJWKError: that signature does not verify

    try:
        message = ParseDict(card, AgentCard(), ignore_unknown_fields=True)
    except (ParseError, TypeError, ValueError) as exc:
        raise InputError(f"the agent card's signatures cannot be read: {' '.join(str(exc).split())[:200]}",
                         hint="each signature is {protected, signature[, header]}") from None
    try:
        create_signature_verifier(key_for, ALGORITHMS)(message)
    except SignatureVerificationError as exc:
        tried = ", ".join(str(k) for k in dict.fromkeys(asked)) or "none readable"
        raise InputError(f"the agent card's signature does not verify with --jwks {source} ({exc}; kids tried: "
                         f"{tried})", hint="check that --jwks is the agent provider's key set, and that the card "
                                           "was not changed after it was signed") from None
    return str(asked[-1])
