"""The built-in price list: USD per million tokens, from the vendors' pricing pages.

Each entry is `[input, output, cache_read, cache_write_5m, cache_write_1h]`. Keys are the
API model ids; a dated snapshot (`-YYYYMMDD`, `-YYYY-MM-DD`) is priced as the id it is a
snapshot of (`pricing.PriceTable.price`), so a snapshot has its own key only where its price
differs. Override or extend with MODEL_PRICES.

- Anthropic: the 5m and 1h columns are its two cache-write TTLs; a cache hit is 0.1x input
  (0.05x for Opus 5.5 and Sonnet 5.5, 0.025x for Fable and Mythos 5.1 and 5.2).
- OpenAI: cache writes cost the input price before the GPT-5.6 family and 1.25x input from
  it on; the 1h column holds its 12-hour-retention write (2.5x input), which this service
  never asks for. Cached input has its own price.
- Gemini: no charge to write the (implicit) cache, so both write columns equal input.
- OpenRouter: passes the vendor's price through (its fee is on credit purchases); one
  cache-write price per model is listed, so both write columns hold it. For Gemini models
  its listed write figure is an explicit-cache storage rate, not a per-token price: their
  writes cost the input price, as the implicit cache this service uses charges nothing.

Compiled on 2026-12-06 from stored copies of platform.claude.com (pricing and model pages),
developers.openai.com (models, model pages, prompt-caching guide), ai.google.dev (pricing,
transcribed 2026-10-07, and model pages) and openrouter.ai, completed from dated secondary
sources that quote them where no complete official table was readable; every figure's
source, and the conflicts marked below, are in documentation/providers.md ("Price list").
Not represented: prompt-length tiers (Claude Haiku 5.5 above 100k prompt tokens, Sonnet 4.5
above 200k, GPT-5.4 and GPT-5.6/6.x above 272k input, Gemini 2.5 Pro and 3.1 Pro above
200k: the whole request at a higher rate) and dated promotions (Gemini 3.8 Flash doubles on
2027-01-01). Such calls are estimated at the base rate, which errs low.
"""

from __future__ import annotations

from common_core.enums import LLMProviderType, ServedVia

DEFAULT_PRICES: dict[str, list[float]] = {
    # Anthropic: see the module docstring for the sources.
    "claude-fable-5-2": [8.0, 40.0, 0.2, 10.0, 16.0],
    "claude-mythos-5-2": [8.0, 40.0, 0.2, 10.0, 16.0],
    "claude-fable-5-1": [10.0, 50.0, 0.25, 12.5, 20.0],
    "claude-mythos-5-1": [10.0, 50.0, 0.25, 12.5, 20.0],
    "claude-fable-5": [10.0, 50.0, 1.0, 12.5, 20.0],
    "claude-mythos-5": [10.0, 50.0, 1.0, 12.5, 20.0],
    "claude-opus-5-5": [4.0, 20.0, 0.2, 5.0, 8.0],
    "claude-opus-5": [5.0, 25.0, 0.5, 6.25, 10.0],
    "claude-opus-4-8": [5.0, 25.0, 0.5, 6.25, 10.0],
    "claude-opus-4-7": [5.0, 25.0, 0.5, 6.25, 10.0],
    "claude-opus-4-6": [5.0, 25.0, 0.5, 6.25, 10.0],
    "claude-opus-4-5": [5.0, 25.0, 0.5, 6.25, 10.0],
    "claude-opus-4-1": [15.0, 75.0, 1.5, 18.75, 30.0],  # [inferred]
    "claude-opus-4-0": [15.0, 75.0, 1.5, 18.75, 30.0],
    "claude-opus-4-20250514": [15.0, 75.0, 1.5, 18.75, 30.0],
    "claude-sonnet-5-5": [2.0, 10.0, 0.1, 2.5, 4.0],  # [conflict]: see documentation/providers.md
    "claude-sonnet-5": [2.0, 10.0, 0.2, 2.5, 4.0],  # [conflict]: see documentation/providers.md
    "claude-sonnet-4-6": [3.0, 15.0, 0.3, 3.75, 6.0],
    "claude-sonnet-4-5": [3.0, 15.0, 0.3, 3.75, 6.0],
    "claude-sonnet-4-0": [3.0, 15.0, 0.3, 3.75, 6.0],
    "claude-sonnet-4-20250514": [3.0, 15.0, 0.3, 3.75, 6.0],
    "claude-haiku-5-5": [0.1, 0.5, 0.01, 0.125, 0.2],
    "claude-haiku-4-5": [1.0, 5.0, 0.1, 1.25, 2.0],
    "claude-3-5-haiku-latest": [0.8, 4.0, 0.08, 1.0, 1.6],
    "claude-3-5-haiku-20241022": [0.8, 4.0, 0.08, 1.0, 1.6],
    # OpenAI: see the module docstring for the sources.
    "gpt-6.2-astra": [8.0, 40.0, 0.4, 10.0, 20.0],
    "gpt-6.2-sol": [2.0, 10.0, 0.1, 2.5, 5.0],
    "gpt-6.1-sol": [2.0, 10.0, 0.1, 2.5, 5.0],
    "gpt-6.1-terra": [1.0, 5.0, 0.05, 1.25, 2.5],
    "gpt-6-astra": [10.0, 50.0, 1.0, 12.5, 25.0],  # [inferred]
    "gpt-6-sol": [2.0, 10.0, 0.2, 2.5, 5.0],  # [inferred]
    "gpt-6-luna": [0.1, 0.5, 0.01, 0.125, 0.25],  # [inferred]
    "gpt-5.6-sol": [4.0, 20.0, 0.4, 5.0, 10.0],  # [conflict]: see documentation/providers.md
    "gpt-5.6": [4.0, 20.0, 0.4, 5.0, 10.0],  # [conflict]: see documentation/providers.md
    "gpt-5.6-terra": [2.0, 12.0, 0.2, 2.5, 5.0],
    "gpt-5.6-luna": [0.2, 1.2, 0.02, 0.25, 0.5],
    "gpt-5.5": [5.0, 30.0, 0.5, 5.0, 5.0],
    "gpt-5.5-pro": [30.0, 180.0, 30.0, 30.0, 30.0],
    "gpt-5.4": [2.5, 15.0, 0.25, 2.5, 2.5],
    "gpt-5.4-pro": [30.0, 180.0, 30.0, 30.0, 30.0],
    "gpt-5.4-mini": [0.75, 4.5, 0.075, 0.75, 0.75],
    "gpt-5.4-nano": [0.2, 1.25, 0.02, 0.2, 0.2],
    "gpt-5.2": [1.75, 14.0, 0.175, 1.75, 1.75],
    "gpt-5.2-pro": [21.0, 168.0, 21.0, 21.0, 21.0],
    "gpt-5.1": [1.25, 10.0, 0.125, 1.25, 1.25],
    "gpt-5": [1.25, 10.0, 0.125, 1.25, 1.25],
    "gpt-5-mini": [0.25, 2.0, 0.025, 0.25, 0.25],
    "gpt-5-nano": [0.05, 0.4, 0.005, 0.05, 0.05],  # [conflict]: see documentation/providers.md
    "gpt-5-pro": [15.0, 120.0, 15.0, 15.0, 15.0],
    "gpt-4.1": [2.0, 8.0, 0.5, 2.0, 2.0],
    "gpt-4.1-mini": [0.4, 1.6, 0.1, 0.4, 0.4],
    "gpt-4.1-nano": [0.1, 0.4, 0.025, 0.1, 0.1],
    "gpt-4o": [2.5, 10.0, 1.25, 2.5, 2.5],
    "gpt-4o-2024-05-13": [5.0, 15.0, 5.0, 5.0, 5.0],
    "gpt-4o-mini": [0.15, 0.6, 0.075, 0.15, 0.15],
    "o3": [2.0, 8.0, 0.5, 2.0, 2.0],
    "o3-pro": [20.0, 80.0, 20.0, 20.0, 20.0],
    "o4-mini": [1.1, 4.4, 0.275, 1.1, 1.1],
    "o3-mini": [1.1, 4.4, 0.55, 1.1, 1.1],
    "o1": [15.0, 60.0, 7.5, 15.0, 15.0],
    "o1-pro": [150.0, 600.0, 150.0, 150.0, 150.0],
    # Google Gemini API: see the module docstring for the sources.
    "gemini-4-carbon": [4.0, 20.0, 0.2, 4.0, 4.0],
    "gemini-4-argon": [4.0, 20.0, 0.2, 4.0, 4.0],
    "gemini-4-neon": [3.0, 15.0, 0.15, 3.0, 3.0],
    "gemini-4-hydrogen": [1.5, 7.5, 0.075, 1.5, 1.5],
    "gemini-3.8-flash": [0.75, 3.75, 0.075, 0.75, 0.75],  # [inferred]
    "gemini-3.7-flash": [0.75, 3.75, 0.075, 0.75, 0.75],
    "gemini-3.6-flash": [0.75, 3.75, 0.075, 0.75, 0.75],
    "gemini-3.5-flash": [1.5, 9.0, 0.15, 1.5, 1.5],
    "gemini-3.5-flash-lite": [0.3, 2.5, 0.03, 0.3, 0.3],
    "gemini-3.1-flash-lite": [0.25, 1.5, 0.025, 0.25, 0.25],
    "gemini-3.1-flash-lite-preview": [0.25, 1.5, 0.025, 0.25, 0.25],
    "gemini-3.1-pro-preview": [2.0, 12.0, 0.2, 2.0, 2.0],
    "gemini-3.1-pro-preview-customtools": [2.0, 12.0, 0.2, 2.0, 2.0],
    "gemini-3-flash-preview": [0.5, 3.0, 0.05, 0.5, 0.5],
    "gemini-2.5-pro": [1.25, 10.0, 0.125, 1.25, 1.25],
    "gemini-2.5-flash": [0.3, 2.5, 0.03, 0.3, 0.3],  # [inferred]
    "gemini-2.5-flash-preview-09-2025": [0.3, 2.5, 0.03, 0.3, 0.3],  # [inferred]
    "gemini-2.5-flash-lite": [0.1, 0.4, 0.01, 0.1, 0.1],  # [inferred]
    "gemini-2.5-flash-lite-preview-09-2025": [0.1, 0.4, 0.01, 0.1, 0.1],  # [inferred]
    # OpenRouter: see the module docstring for the sources.
    "anthropic/claude-opus-5": [5.0, 25.0, 0.5, 6.25, 6.25],
    "anthropic/claude-opus-5-fast": [10.0, 50.0, 1.0, 12.5, 12.5],
    "anthropic/claude-opus-4.8": [5.0, 25.0, 0.5, 6.25, 6.25],
    "anthropic/claude-opus-4.8-fast": [10.0, 50.0, 1.0, 12.5, 12.5],
    "anthropic/claude-opus-4.7": [5.0, 25.0, 0.5, 6.25, 6.25],
    "anthropic/claude-opus-4.7-fast": [30.0, 150.0, 3.0, 37.5, 37.5],
    "anthropic/claude-opus-4.6": [5.0, 25.0, 0.5, 6.25, 6.25],
    "anthropic/claude-opus-4.6-fast": [30.0, 150.0, 3.0, 37.5, 37.5],
    "anthropic/claude-opus-4.5": [5.0, 25.0, 0.5, 6.25, 6.25],
    "anthropic/claude-fable-5": [10.0, 50.0, 1.0, 12.5, 12.5],
    "anthropic/claude-sonnet-5": [3.0, 15.0, 0.3, 3.75, 3.75],
    "anthropic/claude-sonnet-4.6": [3.0, 15.0, 0.3, 3.75, 3.75],
    "anthropic/claude-sonnet-4.5": [3.0, 15.0, 0.3, 3.75, 3.75],
    "anthropic/claude-haiku-4.5": [1.0, 5.0, 0.1, 1.25, 1.25],
    "anthropic/claude-3.5-haiku": [0.8, 4.0, 0.8, 0.8, 0.8],
    "openai/gpt-6.1-terra": [1.0, 5.0, 1.0, 1.0, 1.0],
    "openai/gpt-5.5": [5.0, 30.0, 0.5, 5.0, 5.0],
    "openai/gpt-5.4": [2.5, 15.0, 0.25, 2.5, 2.5],
    "openai/gpt-5.4-mini": [0.75, 4.5, 0.075, 0.75, 0.75],
    "openai/gpt-5.4-nano": [0.2, 1.25, 0.02, 0.2, 0.2],
    "openai/gpt-5.2": [1.75, 14.0, 0.175, 1.75, 1.75],
    "openai/gpt-5.1": [1.25, 10.0, 0.13, 1.25, 1.25],
    "openai/gpt-5": [1.25, 10.0, 0.125, 1.25, 1.25],
    "openai/gpt-5-mini": [0.25, 2.0, 0.025, 0.25, 0.25],
    "openai/gpt-5-nano": [0.05, 0.4, 0.01, 0.05, 0.05],
    "openai/gpt-4.1": [2.0, 8.0, 0.5, 2.0, 2.0],
    "openai/gpt-4.1-mini": [0.4, 1.6, 0.1, 0.4, 0.4],
    "openai/gpt-4.1-nano": [0.1, 0.4, 0.025, 0.1, 0.1],
    "openai/gpt-4o": [2.5, 10.0, 2.5, 2.5, 2.5],
    "openai/gpt-4o-mini": [0.15, 0.6, 0.075, 0.15, 0.15],
    "openai/o3": [2.0, 8.0, 0.5, 2.0, 2.0],
    "openai/o4-mini": [1.1, 4.4, 0.275, 1.1, 1.1],
    "google/gemini-4-carbon": [2.0, 10.0, 2.0, 2.0, 2.0],
    "google/gemini-3.5-flash": [1.5, 9.0, 0.15, 1.5, 1.5],
    "google/gemini-3.1-pro-preview": [2.0, 12.0, 0.2, 2.0, 2.0],
    "google/gemini-3.1-flash-lite": [0.25, 1.5, 0.025, 0.25, 0.25],
    "google/gemini-3-flash-preview": [0.5, 3.0, 0.05, 0.5, 0.5],
    "google/gemini-2.5-pro": [1.25, 10.0, 0.31, 1.625, 1.625],
    "google/gemini-2.5-flash": [0.3, 2.5, 0.075, 0.3833, 0.3833],
    "google/gemini-2.5-flash-lite": [0.1, 0.4, 0.01, 0.1, 0.1],
    # The mock provider costs nothing.
    "mock-rater-1": [0.0, 0.0, 0.0, 0.0, 0.0],
}


# The price of a call through a cheaper lane than a standard one, as a factor of its standard
# price, per lane and provider (`PriceTable.estimate`). Batch APIs: half price at Anthropic
# (Message Batches), OpenAI (Batch API), Google (Gemini batch mode) and OpenRouter (passed on
# from the upstream's batch price); the mock follows them. Flex (`service_tier: "flex"`):
# half price at OpenAI and Google; Anthropic sells none. A lane or provider not listed costs
# the standard price.
LANE_PRICE_FACTORS: dict[ServedVia, dict[LLMProviderType, float]] = {
    ServedVia.BATCH: {
        LLMProviderType.ANTHROPIC: 0.5,
        LLMProviderType.OPENAI: 0.5,
        LLMProviderType.GOOGLE: 0.5,
        LLMProviderType.OPENROUTER: 0.5,
        LLMProviderType.MOCK: 0.5,
    },
    ServedVia.FLEX: {
        LLMProviderType.OPENAI: 0.5,
        LLMProviderType.GOOGLE: 0.5,
    },
}
