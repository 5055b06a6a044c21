"""The Lua scripts of the Redis adapters, read from `lua/`."""

from __future__ import annotations

from importlib import resources


def lua(*names: str) -> str:
    """The scripts `names` (paths under `lua/`, without `.lua`) joined into one script: a
    shared prelude first, then the script that uses it, so each call is one atomic unit."""
    folder = resources.files("services.llm_provider_service.redis") / "lua"
    return "\n".join((folder / f"{name}.lua").read_text() for name in names)
