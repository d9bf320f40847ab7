"""Standalone model ids the SDK 0.1.67 knows, and the local price table."""

from __future__ import annotations

EMBEDDING_MODELS: frozenset[str] = frozenset(
    {"embeddinggemma-300m", "qwen-3-embedding-0.6b", "qwen-3-embedding-4b", "qwen-3-embedding-8b"}
)

_BASE_PRICES: dict[str, tuple[float, float]] = {
    # model id: (USD per million input tokens, USD per million output tokens)
    "qwen-3.5-2b": (0.02, 0.06),
    "qwen-3.5-27b": (0.10, 0.40),
    "qwen-3.5-35b-a3b": (0.05, 0.20),
    "qwen-3.5-122b-a10b": (0.25, 1.00),
    "nemotron-3-super-120b-a12b": (0.25, 1.00),
    "nemotron-3-nano-30b-a3b": (0.05, 0.20),
    "gemma-4-31b-it": (0.10, 0.40),
    "gemma-4-26b-a4b-it": (0.05, 0.20),
}
_GPT_OSS: dict[str, tuple[float, float]] = {"gpt-oss-20b": (0.04, 0.15), "gpt-oss-120b": (0.10, 0.40)}

MODEL_PRICES: dict[str, tuple[float, float]] = {
    **{m: (0.01, 0.0) for m in EMBEDDING_MODELS},
    **_BASE_PRICES,
    **{f"{m}-thinking": p for m, p in _BASE_PRICES.items()},
    **_GPT_OSS,
    **{f"{m}-no-thinking": p for m, p in _GPT_OSS.items()},
}

KNOWN_MODELS: frozenset[str] = frozenset(MODEL_PRICES)


def cost_usd(input_tokens: int, output_tokens: int, prices: tuple[float, float]) -> float:
    """Deterministic USD cost of a token count at (input, output) prices per million."""
    return round(input_tokens * prices[0] / 1e6 + output_tokens * prices[1] / 1e6, 10)
