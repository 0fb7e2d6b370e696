"""Price table: tokens -> US dollars, and whether a model's weights are open."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from drivechain.errors import ConfigError
from drivechain.models.base import Usage

_FORMAT_HINT = ('expected [models."NAME"] tables with prompt_per_mtok, completion_per_mtok '
                "(US$ per 1M tokens) and optional open_weights (true/false)")
# A listed name also matches longer names that continue with one of these (gpt-4o-2024-08-06, llava:13b).
_BOUNDARIES = "-:@_."
_SPEC_PREFIXES = ("openai:", "hf:")


class Price(BaseModel):
    """One model's price in US$ per million tokens."""

    model_config = ConfigDict(extra="forbid")
    prompt_per_mtok: float = Field(ge=0)
    completion_per_mtok: float = Field(ge=0)
    open_weights: bool | None = None


def normalize_model_name(model: str) -> str:
    """Lower-case bare model name: drops ``openai:``/``hf:`` and any path or org (``Qwen/``)."""
    name = model.strip()
    for prefix in _SPEC_PREFIXES:
        if name.startswith(prefix):
            name = name[len(prefix):]
            break
    name = name.rstrip("/").rsplit("/", 1)[-1]
    return name.lower()


class PriceTable:
    """Prices by model name, with longest-prefix fallback for dated or quantised variants."""

    def __init__(self, prices: dict[str, Price]) -> None:
        self.prices = {name.lower(): price for name, price in prices.items()}

    def lookup(self, model: str) -> Price | None:
        """The entry for ``model`` (exact name, else the longest listed prefix at a boundary)."""
        name = normalize_model_name(model)
        if name in self.prices:
            return self.prices[name]
        best = None
        for key in self.prices:
            if name.startswith(key) and name[len(key)] in _BOUNDARIES and (best is None or len(key) > len(best)):
                best = key
        return self.prices[best] if best is not None else None

    def cost_usd(self, model: str, usage: Usage) -> float | None:
        """Dollars for ``usage`` (reasoning tokens are inside completion tokens); None if unpriced."""
        price = self.lookup(model)
        if price is None:
            return None
        return (usage.prompt_tokens * price.prompt_per_mtok + usage.completion_tokens * price.completion_per_mtok) / 1e6

    def open_weights(self, model: str) -> bool | None:
        """Whether the weights are open; None if the model or the flag is unknown."""
        price = self.lookup(model)
        return None if price is None else price.open_weights


def _parse(text: str, where: str) -> dict[str, Price]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"prices file {where} is not valid TOML ({exc}); {_FORMAT_HINT}") from None
    models = data.get("models")
    if not isinstance(models, dict) or set(data) - {"models"}:
        raise ConfigError(f"prices file {where} has no [models] section or stray keys; {_FORMAT_HINT}")
    out = {}
    for name, entry in models.items():
        try:
            out[name] = Price.model_validate(entry)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"]) or "entry"
            raise ConfigError(f"prices file {where}: model {name!r} field {field}: {first['msg']}; {_FORMAT_HINT}") from None
    return out


def shipped_prices() -> dict[str, Price]:
    """The table shipped with the package."""
    text = resources.files("drivechain.models").joinpath("prices.toml").read_text(encoding="utf-8")
    return _parse(text, "prices.toml (shipped)")


def load_prices(path: Path | None = None) -> PriceTable:
    """The shipped table, extended and overridden (entry by entry) by the user's file if given."""
    prices = shipped_prices()
    if path is not None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"prices file {path} cannot be read ({exc.__class__.__name__}); check --prices") from None
        prices.update(_parse(text, str(path)))
    return PriceTable(prices)
