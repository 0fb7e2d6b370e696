"""Model specs and the price table."""

from __future__ import annotations

import pytest

from drivechain.errors import ConfigError
from drivechain.models.base import Usage
from drivechain.models.openai_api import OpenAIModel
from drivechain.models.pricing import load_prices
from drivechain.models.registry import load_model


def test_openai_spec_with_base_url_and_options():
    model = load_model("openai:qwen2-vl-7b", base_url="http://127.0.0.1:9/v1", timeout_s=3.0,
                       max_image_side_px=None, batch_size=4, max_connections=64)
    assert isinstance(model, OpenAIModel)
    assert model.name == "openai:qwen2-vl-7b" and model.url == "http://127.0.0.1:9/v1/chat/completions"
    assert model.timeout_s == 3.0 and model.max_connections == 64
    assert model.max_image_side_px == 1024  # None means "not given", so the default stays


def test_openai_base_url_from_env(monkeypatch):
    monkeypatch.setenv("DRIVECHAIN_BASE_URL", "http://127.0.0.1:8000/v1/")
    assert load_model("openai:m").url == "http://127.0.0.1:8000/v1/chat/completions"
    monkeypatch.delenv("DRIVECHAIN_BASE_URL")
    with pytest.raises(ConfigError, match="--base-url"):
        load_model("openai:m")


@pytest.mark.parametrize("spec", ["gpt-4o", "openai:", "hf:", "oracle:x", "random:abc", "", "vllm:m", "ORACLE"])
def test_bad_specs_name_valid_forms(spec):
    with pytest.raises(ConfigError) as err:
        load_model(spec, base_url="http://127.0.0.1:9/v1")
    assert "\n" not in str(err.value) and repr(spec) in str(err.value)


def test_bad_base_url():
    with pytest.raises(ConfigError, match="not an http"):
        load_model("openai:m", base_url="127.0.0.1:8000")


def test_hf_missing_path_is_config_error(tmp_path):
    with pytest.raises(ConfigError, match="not a model folder"):
        load_model(f"hf:{tmp_path / 'nope'}")


def test_builtins_are_delegated(monkeypatch):
    import sys
    import types

    calls = []
    fake = types.ModuleType("drivechain.models.builtin")

    def make_builtin(name, arg, **options):
        calls.append((name, arg, options))
        return object()

    fake.make_builtin = make_builtin
    monkeypatch.setitem(sys.modules, "drivechain.models.builtin", fake)
    for spec in ["oracle", "heuristic", "constant", "constant:B", "random", "random:7"]:
        load_model(spec, seed=3, timeout_s=None)
    assert calls == [("oracle", None, {"seed": 3}), ("heuristic", None, {"seed": 3}), ("constant", None, {"seed": 3}),
                     ("constant", "B", {"seed": 3}), ("random", None, {"seed": 3}), ("random", "7", {"seed": 3})]


def test_shipped_prices():
    table = load_prices()
    usage = Usage(prompt_tokens=1_000_000, completion_tokens=2_000_000, reasoning_tokens=500_000)
    assert table.cost_usd("openai:gpt-4o", usage) == pytest.approx(2.5 + 2 * 10.0)
    assert table.cost_usd("gpt-4o-2024-08-06", usage) == table.cost_usd("gpt-4o", usage)
    assert table.cost_usd("gpt-4o-mini-2024-07-18", usage) == table.cost_usd("gpt-4o-mini", usage)
    assert table.open_weights("openai:Qwen/Qwen2.5-VL-7B-Instruct") is True
    assert table.open_weights("o4-mini") is False
    assert table.cost_usd("oracle", usage) == 0.0 and table.cost_usd("constant:B", usage) == 0.0
    assert table.cost_usd("openai:my-own-finetune", usage) is None and table.open_weights("hf:/m/x") is None
    assert table.lookup("gpt-4oz") is None  # prefixes match only at a name boundary


def test_user_prices_override_and_extend(tmp_path):
    path = tmp_path / "prices.toml"
    path.write_text('[models."gpt-4o"]\nprompt_per_mtok = 1.0\ncompletion_per_mtok = 2.0\n\n'
                    '[models."my-vlm"]\nprompt_per_mtok = 0.5\ncompletion_per_mtok = 0.5\nopen_weights = true\n')
    table = load_prices(path)
    usage = Usage(prompt_tokens=1_000_000, completion_tokens=1_000_000)
    assert table.cost_usd("gpt-4o", usage) == 3.0 and table.open_weights("gpt-4o") is None
    assert table.cost_usd("openai:my-vlm", usage) == 1.0 and table.open_weights("hf:/models/My-VLM") is True
    assert table.cost_usd("gpt-4o-mini", usage) == pytest.approx(0.75)  # shipped entries remain


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[models.x\nprompt_per_mtok = 1", "not valid TOML"),
        ('[models."x"]\nprompt_per_mtok = -1\ncompletion_per_mtok = 1\n', "prompt_per_mtok"),
        ('[models."x"]\nprompt_per_mtok = 1\n', "completion_per_mtok"),
        ('[models."x"]\nprompt_per_mtok = 1\ncompletion_per_mtok = 1\ncolour = "red"\n', "colour"),
        ('price = 3\n', "no [models] section"),
    ],
)
def test_broken_prices_file_is_one_line_config_error(tmp_path, text, fragment):
    path = tmp_path / "p.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_prices(path)
    assert fragment in str(err.value) and str(path) in str(err.value) and "\n" not in str(err.value)


def test_missing_prices_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot be read"):
        load_prices(tmp_path / "none.toml")
