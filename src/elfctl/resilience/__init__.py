"""Fallback protocols team code imports: retry policies, shared circuit breakers, fallback strategies
and cost attribution (sync and async functions alike).

    from elfctl.resilience import retry, circuit_breaker, fallback, cost_tracked

    @retry(policy="network")
    @circuit_breaker("search-api", fail_max=5, reset_timeout=60)
    def search(q): ...

Breakers, the request queue and the response cache live in the project's store (found from the
current folder like the CLI does, or set with `use_store`).
"""

from elfctl.resilience.attribution import AGENT_HEADER, TEAM_HEADER, atag_request, cost_tracked, tag_request
from elfctl.resilience.breaker import CircuitOpen
from elfctl.resilience.circuit import circuit_breaker
from elfctl.resilience.fallback import STRATEGIES, FallbackFailed, Outcome, Step, fallback
from elfctl.resilience.policies import POLICIES, RetryPolicy, retry
from elfctl.resilience.runtime import reset, use_store

__all__ = ["AGENT_HEADER", "POLICIES", "STRATEGIES", "TEAM_HEADER", "CircuitOpen", "FallbackFailed", "Outcome",
           "RetryPolicy", "Step", "atag_request", "circuit_breaker", "cost_tracked", "fallback", "reset", "retry",
           "tag_request", "use_store"]
