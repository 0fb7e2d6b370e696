"""Camera projection, the visibility rule (front / image / occlusion), id marks and DriveLM tags."""

from __future__ import annotations

import numpy as np

from drivechain.sources.camera import (
    Camera, box_corners, drivelm_tag, mark_image, pixel_box, visible_boxes,
)
from drivechain.interop.drivelm.tags import parse_tags
from tests.carla_geometry import cube, intrinsics, project_unreal, transform_matrix

W, H = 1600, 900


def _front_camera(yaw_deg: float = 0.0) -> tuple[Camera, np.ndarray, np.ndarray]:
    cam2world = transform_matrix((10.0, 5.0, 1.6), (0.0, 0.0, yaw_deg))
    w2c = np.linalg.inv(cam2world)
    K = intrinsics(W, H, 70.0)
    return Camera.from_unreal("CAM_FRONT", K.tolist(), w2c.tolist(), W, H), K, w2c


def test_projection_matches_the_unreal_formula_for_every_corner():
    cam, K, w2c = _front_camera(yaw_deg=30.0)
    corners = cube((10.0 + 20 * np.cos(np.radians(30)), 5.0 + 20 * np.sin(np.radians(30)), 0.8), (2.3, 1.0, 0.8), 45.0)
    uv, depth = cam.project(np.array(corners))
    for (u, v), d, c in zip(uv, depth, corners):
        eu, ev, ed = project_unreal(c, K, w2c)
        assert abs(u - eu) < 1e-6 and abs(v - ev) < 1e-6 and abs(d - ed) < 1e-6


def test_a_box_straight_ahead_lands_in_the_image_centre_and_its_corners_inside_its_pixel_box():
    cam, K, w2c = _front_camera()
    corners = np.array(cube((30.0, 5.0, 1.6), (2.0, 1.0, 0.75), 0.0))
    box, depth = pixel_box(cam, corners)
    assert abs(depth - 20.0) < 1e-6
    assert abs((box[0] + box[2]) / 2 - W / 2) < 1 and abs((box[1] + box[3]) / 2 - H / 2) < 1
    for c in corners:
        u, v, _ = project_unreal(c, K, w2c)
        assert box[0] - 0.1 <= u <= box[2] + 0.1 and box[1] - 0.1 <= v <= box[3] + 0.1


def test_left_handed_world_a_box_to_the_right_appears_on_the_right():
    cam, _, _ = _front_camera()
    box, _ = pixel_box(cam, np.array(cube((30.0, 9.0, 1.6), (2.0, 1.0, 0.75), 0.0)))  # +y = right in CARLA
    assert (box[0] + box[2]) / 2 > W / 2 + 100


def test_behind_and_outside_the_field_of_view_are_not_in_view():
    cam, _, _ = _front_camera()
    assert pixel_box(cam, np.array(cube((0.0, 5.0, 1.6), (2.0, 1.0, 0.75), 0.0))) is None  # behind
    assert pixel_box(cam, np.array(cube((12.0, 40.0, 1.6), (2.0, 1.0, 0.75), 0.0))) is None  # 87 deg to the side


def test_a_box_straddling_the_camera_plane_is_clipped_to_the_image():
    cam, _, _ = _front_camera()
    box, _ = pixel_box(cam, np.array(cube((12.0, 6.5, 1.0), (3.0, 1.0, 0.75), 0.0)))
    assert box[0] >= 0 and box[2] <= W and box[1] >= 0 and box[3] <= H


def test_occlusion_hides_a_box_fully_behind_a_nearer_one_but_not_a_partly_hidden_one():
    cam, _, _ = _front_camera()
    boxes = {
        1: np.array(cube((20.0, 5.0, 1.6), (2.0, 2.0, 2.0), 0.0)),   # near, big
        2: np.array(cube((45.0, 5.0, 1.6), (2.0, 1.0, 0.75), 0.0)),  # straight behind it
        3: np.array(cube((45.0, 14.0, 1.6), (2.0, 1.0, 0.75), 0.0)),  # off to the side, mostly uncovered
    }
    seen = visible_boxes(cam, boxes)
    assert set(seen) == {1, 3}
    assert seen[3][0] < seen[1][2]  # box 3 is partly behind box 1, and still counts as visible
    assert box_corners((0, 0, 0), (1, 1, 1), 0.0).shape == (8, 3)


def test_marks_are_drawn_on_a_copy_near_the_box():
    image = np.full((H, W, 3), 90, dtype=np.uint8)
    marked = mark_image(image, {7: [700.0, 400.0, 800.0, 480.0]})
    assert (image == 90).all()  # the original is untouched
    changed = np.argwhere((marked != image).any(axis=2))
    assert len(changed) > 0
    assert changed[:, 1].min() >= 790 and changed[:, 0].max() <= 410  # beside the box's top-right corner


def test_drivelm_tags_round_trip():
    tag = drivelm_tag(3, "CAM_FRONT", [100.0, 200.0, 300.0, 260.0])
    assert tag == "<c3,CAM_FRONT,200.0,230.0>"
    assert [(t.number, t.camera, t.x_px, t.y_px) for t in parse_tags(f"look at {tag} and <c12,CAM_BACK,1088.3,497.5>.")] == [
        (3, "CAM_FRONT", 200.0, 230.0), (12, "CAM_BACK", 1088.3, 497.5)]
