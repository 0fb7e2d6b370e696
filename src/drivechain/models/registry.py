"""Model specs -> adapters: ``openai:NAME``, ``hf:PATH``, ``oracle``, ``heuristic``, ``constant[:TEXT]``, ``random[:SEED]``."""

from __future__ import annotations

import inspect
import os
from typing import Any

from drivechain.errors import ConfigError
from drivechain.models.base import Model

BUILTINS = ("oracle", "heuristic", "constant", "random")
BASE_URL_ENV = "DRIVECHAIN_BASE_URL"
VALID_FORMS = "openai:NAME (with --base-url or DRIVECHAIN_BASE_URL), hf:PATH, oracle, heuristic, constant[:TEXT], random[:SEED]"


def _accepted(factory: Any, options: dict[str, Any]) -> dict[str, Any]:
    # The CLI passes one option set to every kind of model; each adapter takes what applies to it.
    params = inspect.signature(factory).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return {k: v for k, v in options.items() if v is not None}
    return {k: v for k, v in options.items() if k in params and v is not None}


def load_model(spec: str, *, base_url: str | None = None, **options: Any) -> Model:
    """Build the model a spec names; options an adapter does not take (or that are None) are ignored."""
    spec = (spec or "").strip()
    kind, sep, arg = spec.partition(":")
    if kind == "openai":
        if not arg:
            raise ConfigError(f"model spec {spec!r} lacks a model name; valid forms: {VALID_FORMS}")
        url = base_url or os.environ.get(BASE_URL_ENV)
        if not url:
            raise ConfigError(f"model {spec!r} needs a server: pass --base-url http://HOST:PORT/v1 or set {BASE_URL_ENV}")
        from drivechain.models.openai_api import OpenAIModel

        return OpenAIModel(arg, url, **_accepted(OpenAIModel, options))
    if kind == "hf":
        if not arg:
            raise ConfigError(f"model spec {spec!r} lacks a path; valid forms: {VALID_FORMS}")
        from drivechain.models.hf import HFModel

        return HFModel(arg, **_accepted(HFModel, options))
    if kind in BUILTINS:
        if kind in ("oracle", "heuristic") and sep:
            raise ConfigError(f"model spec {spec!r}: {kind} takes no argument; valid forms: {VALID_FORMS}")
        if kind == "random" and arg and not arg.isdigit():
            raise ConfigError(f"model spec {spec!r}: the random seed must be a non-negative integer (random:7)")
        try:
            from drivechain.models.builtin import make_builtin
        except ImportError as exc:
            raise ConfigError(f"built-in model {kind!r} is not available in this install ({exc})") from None
        return make_builtin(kind, arg if sep else None, **_accepted(make_builtin, options))
    raise ConfigError(f"unknown model spec {spec!r}; valid forms: {VALID_FORMS}")
