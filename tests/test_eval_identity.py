"""A run folder holding an eval with another way of asking (--ask, --links, --gguf, --max-steps) is refused."""

from __future__ import annotations

import json

import pytest

from drivechain.commands.eval import IDENTITY, OWNED
from drivechain.errors import ConfigError
from drivechain.evaluation.runfolder import claim_run_folder


@pytest.mark.parametrize("key,old,new", [("ask", "all", "one"), ("links", None, ["Per->Pred"]),
                                         ("gguf", None, "m.gguf"), ("max_steps", 6, 3)])
def test_another_way_of_asking_is_another_run(tmp_path, key, old, new):
    base = {"model": "oracle", "frames_sha256": "abc", "ask": "all", "links": None, "gguf": None, "max_steps": 6}
    (tmp_path / "config.json").write_text(json.dumps(dict(base, **{key: old})))
    claim_run_folder(tmp_path, "eval", dict(base, **{key: old}), IDENTITY, OWNED, force=False)  # same run resumes
    with pytest.raises(ConfigError, match=key):
        claim_run_folder(tmp_path, "eval", dict(base, **{key: new}), IDENTITY, OWNED, force=False)
    claim_run_folder(tmp_path, "eval", dict(base, **{key: new}), IDENTITY, OWNED, force=True)
    assert not (tmp_path / "config.json").exists()
