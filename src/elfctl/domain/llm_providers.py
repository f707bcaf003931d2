"""LLM providers as `elfctl health` sees them: which provider serves a model, which environment
variable (or credential name) holds its key. Pure rules: no I/O."""

from __future__ import annotations

# Provider -> environment variable holding its key (what litellm itself reads). The same name is
# looked up in the credential store.
KEY_VARS = {
    "openai": "OPENAI_API_KEY",
    "anthropic": "ANTHROPIC_API_KEY",
    "azure": "AZURE_API_KEY",
    "gemini": "GEMINI_API_KEY",
    "mistral": "MISTRAL_API_KEY",
    "groq": "GROQ_API_KEY",
    "cohere": "COHERE_API_KEY",
    "deepseek": "DEEPSEEK_API_KEY",
}

# Providers that run locally and need no key.
KEYLESS = frozenset({"ollama", "ollama_chat", "hosted_vllm", "lm_studio", "llamafile"})


def key_var(provider: str) -> str:
    return KEY_VARS.get(provider, f"{provider.upper().replace('-', '_')}_API_KEY")


def provider_of(model: str, map_provider=None) -> str | None:
    """`openai/gpt-4o` -> openai; a bare name asks `map_provider(model)` (the price map's
    `litellm_provider`), called only when needed since loading the map costs time."""
    if "/" in model:
        return model.split("/", 1)[0]
    return map_provider(model) if map_provider else None


def models_by_provider(chains: dict[str, list[str]], map_provider=None) -> tuple[dict[str, dict], list[str]]:
    """{provider: {"models": [...], "teams": [...]}} in first-seen order, and the models whose
    provider is unknown. `chains` is team -> [model, *fallbacks]."""
    out: dict[str, dict] = {}
    unknown: list[str] = []
    for team, chain in chains.items():
        for model in chain:
            provider = provider_of(model, map_provider)
            if provider is None:
                if model not in unknown:
                    unknown.append(model)
                continue
            entry = out.setdefault(provider, {"models": [], "teams": []})
            if model not in entry["models"]:
                entry["models"].append(model)
            if team not in entry["teams"]:
                entry["teams"].append(team)
    return out, unknown
