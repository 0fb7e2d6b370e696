"""Multi-camera prompts: named cameras in Frame.images, each image sent after its camera's name, in order."""

from __future__ import annotations

import asyncio
import base64
import io

import pytest

from drivechain.errors import ConfigError
from drivechain.interop.drivelm.importer import import_drivelm
from drivechain.interop.drivelm.tags import TAG_NOTE, format_tag, only_tags, parse_tags, tags_to_ids
from drivechain.models.base import ImagePart, TextPart
from drivechain.prompts import build_request, select_cameras
from tests.drivelm_fixture import CAMERAS, IMAGE_SIZE, camera_color, write_drivelm
from tests.fakeserver import FakeServer, image_urls


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    root = tmp_path_factory.mktemp("dlm")
    path, images = write_drivelm(root)
    from drivechain.dataset import load_dataset

    import_drivelm(path, images, root / "ds")
    return load_dataset(root / "ds")


def test_tags_parse_format_and_reduce_to_ids():
    text = "Notice <c3,CAM_FRONT,1043.2,82.2> then < c12 , CAM_BACK_LEFT , 5 , -7.5 >."
    tags = parse_tags(text)
    assert [(t.number, t.camera, t.x_px, t.y_px) for t in tags] == [(3, "CAM_FRONT", 1043.2, 82.2), (12, "CAM_BACK_LEFT", 5.0, -7.5)]
    assert tags[0].name == "c3" and format_tag(3, "CAM_FRONT", 1043.2, 82.2) == "<c3,CAM_FRONT,1043.2,82.2>"
    assert only_tags("<c1,CAM_BACK,1.0,2.0>, and <c2,CAM_BACK,3.0,4.0>.") is not None
    assert only_tags("The car <c1,CAM_BACK,1.0,2.0> turns.") is None
    assert tags_to_ids("c3 > <c1,CAM_BACK,1.0,2.0> > c12").split() == ["3", ">", "1", ">", "12"]
    assert tags_to_ids("abc1 c2x 1.5c3") == "abc1 c2x 1.5c3"  # only whole tokens are ids


def test_select_cameras_all_front_names_and_unknown():
    images = {c: f"images/{c}.jpg" for c in CAMERAS}
    assert [c for c, _ in select_cameras(images, "all")] == list(CAMERAS)
    assert select_cameras(images, "front") == [("CAM_FRONT", "images/CAM_FRONT.jpg")]
    assert [c for c, _ in select_cameras(images, "CAM_BACK, CAM_FRONT")] == ["CAM_BACK", "CAM_FRONT"]
    assert select_cameras({"bev": "b.png"}, "front") == [("bev", "b.png")]  # single camera: that one
    with pytest.raises(ConfigError, match="CAM_TOP"):
        select_cameras(images, "CAM_TOP")


def test_request_sends_every_camera_after_its_name_in_order(imported):
    rec = next(imported.records())
    targets = rec.graph.stage("perception")
    req = build_request(rec, targets, image=True, upstream=[], image_root=str(imported.root))
    parts = req.messages[1].content
    names = [p.text for p in parts if isinstance(p, TextPart) and p.text.startswith("Camera ")]
    assert names == [f"Camera {c}:" for c in CAMERAS]
    for i, part in enumerate(parts):  # each image directly follows its label
        if isinstance(part, ImagePart):
            label = parts[i - 1].text
            assert label.startswith("Camera ") and part.path.endswith(f"/{label[7:-1]}.jpg")
    assert parts[0].text.startswith("Current frame, 6 cameras (CAM_FRONT, CAM_FRONT_LEFT")
    assert TAG_NOTE in parts[-1].text  # the questions name objects by tag, so the tag format is explained
    assert req.meta["cameras"] == list(CAMERAS)
    front = build_request(rec, targets, image=True, upstream=[], cameras="front")
    imgs = [p.path for p in front.messages[1].content if isinstance(p, ImagePart)]
    assert len(imgs) == 1 and imgs[0].endswith("/CAM_FRONT.jpg") and front.key("m") != req.key("m")


def test_openai_adapter_sends_six_images_in_camera_order(imported):
    from PIL import Image

    from drivechain.models.openai_api import OpenAIModel

    rec = next(imported.records())
    req = build_request(rec, rec.graph.stage("prediction"), image=True, upstream=[], image_root=str(imported.root))

    async def go(url: str):
        model = OpenAIModel("vlm", url, api_key="k", image_format="jpeg")
        try:
            return await model.respond(req)
        finally:
            await model.aclose()

    with FakeServer(reply=lambda msgs: '{"pred.0": "c1", "pred.1": "yes"}') as srv:
        resp = asyncio.run(go(srv.base_url))
        body = srv.requests[0].body
    assert resp.ok
    urls = image_urls(body)
    assert len(urls) == 6
    content = body["messages"][1]["content"]
    labels = [p["text"] for p in content if p["type"] == "text" and p["text"].startswith("Camera ")]
    assert labels == [f"Camera {c}:" for c in CAMERAS]
    for i, url in enumerate(urls):  # order and identity: each camera's own size and colour
        img = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGB")
        assert img.size == (IMAGE_SIZE[0] + 2 * i, IMAGE_SIZE[1] + i)
        got = img.getpixel((img.size[0] // 2, img.size[1] // 2))
        assert all(abs(a - b) <= 12 for a, b in zip(got, camera_color(i)))


def test_object_answers_named_by_tag_parse_to_agent_ids(imported):
    from drivechain.grading.graders import grade
    from drivechain.grading.parse import parse_reply
    from drivechain.prompts import format_hint

    rec = next(imported.records())
    objects, ranking = rec.graph.get("pred.0"), rec.graph.get("plan.0")
    assert '"c1, c3"' in format_hint(objects) and "c3 > c1" in format_hint(ranking)
    reply = '{"pred.0": "<c1,CAM_FRONT,800.0,450.0>", "plan.0": "c1 > c2"}'
    parsed = parse_reply(reply, [objects, ranking])
    assert parsed["pred.0"].value == [1] and parsed["plan.0"].value == [1, 2]
    assert grade(objects, parsed["pred.0"]).score == 1.0 and grade(ranking, parsed["plan.0"]).score == 1.0


def test_eval_refuses_an_unknown_camera_in_one_line(imported, tmp_path):
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "drivechain.cli", "eval", "--data", str(imported.root), "--model", "oracle",
                        "--cameras", "CAM_TOP", "--out", str(tmp_path / "run"), "--no-progress"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "CAM_TOP" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()
