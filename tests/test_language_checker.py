"""The paraphrase checker: rewordings that keep every fact pass, near-misses fail with the right reason."""

from __future__ import annotations

import pytest

from drivechain.language.checker import REASONS, check, facts

ACTION_Q = ("Which action should the ego take now? Options: LANE_LEFT (change to the left lane); IDLE (keep lane and "
            "speed); LANE_RIGHT (change to the right lane); FASTER (speed up); SLOWER (slow down).")

# (template, paraphrase, answer options): each must be kept.
GOOD = [
    ("Is it safe for the ego to change to the left lane now?",
     "Right now, can the ego vehicle safely move over into the left lane?", ()),
    ("Over the next 3 s, will vehicle 1 accelerate, keep a steady speed or brake?",
     "In the coming three seconds, is car 1 going to speed up, hold a steady speed or brake?",
     ("accelerating", "steady", "braking")),
    ("Is vehicle 4 ahead of or behind the ego vehicle?", "Is car #4 in front of the ego or behind it?", ()),
    ("If both keep their current speeds, in how many seconds would the ego vehicle reach the lead vehicle 1? "
     "Answer none if it is not closing in.",
     "Assuming both hold their speeds, how many seconds until the ego catches up with lead car 1? "
     "If it isn't closing in, answer none.", ()),
    ("How many vehicles visible in the image are within 30 m of the ego vehicle (centre to centre)?",
     "Count the visible vehicles within 30 metres of the ego, measured centre to centre.", ()),
    ("Over the next second, should the ego accelerate, keep its speed, decelerate or stop?",
     "During the next 1 s, should the ego accelerate, keep its speed, decelerate or stop?",
     ("accelerate", "keep speed", "decelerate", "stop")),
    ("Will vehicle 1, now in the right lane, cut in: enter the ego vehicle's lane ahead of the ego within the next 3 s?",
     "Vehicle 1 is currently in the right lane: will it cut in ahead of the ego, entering its lane within the next 3 seconds?",
     ()),
    (ACTION_Q, "What should the ego do now? Choose LANE_LEFT (change to the left lane), IDLE (keep lane and speed), "
               "LANE_RIGHT (change to the right lane), FASTER (speed up) or SLOWER (slow down).",
     ("LANE_LEFT", "IDLE", "LANE_RIGHT", "FASTER", "SLOWER")),
    ("Closest approaches: vehicles 3 and 5 (6.7 m).", "Vehicles 5 and 3 come closest, to 6.7 metres.", ()),
    ("Vehicle 1, 13 m ahead on the right, is the most dangerous: it would come within 2 m of the ego in 1 s.",
     "The most dangerous is vehicle 1, 13 metres ahead on the right: within 1 second it would be within 2 m of the ego.",
     ()),
]

# (template, near-miss, the reason it must be rejected for)
BAD = [
    ("Is it safe for the ego to change to the left lane now?",
     "Is it safe for the ego to change to the right lane now?", "side"),
    ("Answer none if it is not closing in.", "Answer none if it is closing in.", "negation"),
    ("Over the next 3 s, will vehicle 1 accelerate, keep a steady speed or brake?",
     "Over the next 5 s, will vehicle 1 accelerate, keep a steady speed or brake?", "horizon"),
    ("Over the next 3 s, will vehicle 1 accelerate, keep a steady speed or brake?",
     "Over the next 3 s, will vehicle 7 accelerate, keep a steady speed or brake?", "vehicle"),
    ("Is it safe for the ego to speed up now?", "Is it safe for the ego to speed up if the road is empty now?",
     "condition"),
    ("Is it safe for the ego to change to the left lane now?",
     "Is it safe for the ego to change to the left lane in 2 s?", "horizon"),
    ("How many vehicles visible in the image are within 30 m of the ego vehicle?",
     "How many vehicles visible in the image are within 50 m of the ego vehicle?", "number"),
    ("How many vehicles visible in the image are within 30 m of the ego vehicle?",
     "How many vehicles visible in the image are more than 30 m from the ego vehicle?", "bound"),
    ("Is vehicle 4 ahead of or behind the ego vehicle?", "Is vehicle 4 ahead of the ego vehicle?", "direction"),
    ("Which vehicle is the most dangerous to the ego?", "Which vehicle or pedestrian is the most dangerous to the ego?",
     "added_entity"),
    ("Closest approaches: vehicle 3 (6.7 m).", "Closest approaches: vehicles 3 and 4 (6.7 m).", "vehicle"),
    (ACTION_Q, ACTION_Q.replace("; FASTER (speed up)", ""), "option"),
    ("Over the next 3 s, will vehicle 1 accelerate, keep a steady speed or brake?",
     "Over the next 3 s, will vehicle 1 accelerate or brake?", "option"),
    ("Which vehicle is the lead vehicle? Answer none if there is none.", "Which vehicle is the lead vehicle?", "option"),
    ("How far ahead is the lead vehicle 1, in metres?", "How far ahead is the lead vehicle 1, in metres?", "duplicate"),
    ("How far ahead is the lead vehicle 1, in metres?", "", "empty"),
    ("How far ahead is the lead vehicle 1, in metres?", '{"q1": "How far ahead is vehicle 1?"}', "malformed"),
    ("How far ahead is the lead vehicle 1, in metres?", "How far?\nVehicle 1 is ahead.", "malformed"),
]


@pytest.mark.parametrize("template,variant,options", GOOD)
def test_faithful_paraphrases_are_kept(template, variant, options):
    assert check(template, variant, options) == ()


@pytest.mark.parametrize("template,variant,reason", BAD)
def test_near_misses_are_rejected_for_their_reason(template, variant, reason):
    options = ("accelerating", "steady", "braking")
    reasons = check(template, variant, options)
    assert reason in reasons, reasons
    assert list(reasons) == sorted(reasons, key=REASONS.index)


def test_facts_read_units_lists_and_spelled_numbers():
    f = facts("Vehicles 3 and 5 are within thirty m? no: within 12.0 metres, over the next second, right now.")
    assert f.vehicles == {3, 5}
    assert dict(f.numbers) == {("12", "m"): 1, ("1", "s"): 1}  # "thirty" is not spelled out in the table
    assert f.now and f.sides == frozenset() and f.negations == 1 and f.bounds == {"below"}
    assert facts("two lanes to the left, 4.0 m/s^2").numbers == {("2", "lane"): 1, ("4", "m/s^2"): 1}
    # a distance after a listed vehicle is a number, not a vehicle
    f = facts("Vehicle 1, 13 m ahead")
    assert f.vehicles == {1} and dict(f.numbers) == {("13", "m"): 1}


def test_preambles_and_unrelated_lines_are_rejected():
    template = "How many lanes does the road have in the ego vehicle's direction of travel at its position?"
    assert check(template, "Here are the rewordings:") == ("unrelated",)
    assert check(template, "Sure, happy to help with that.") == ("unrelated",)
    assert check(template, "Where the ego is, how many lanes does its road have in its direction of travel?") == ()


def test_sides_swapped_between_paired_options_are_rejected():
    swapped = ACTION_Q.replace("(change to the left lane)", "(change to the X lane)").replace(
        "(change to the right lane)", "(change to the left lane)").replace("X lane", "right lane")
    assert check(ACTION_Q, swapped) == ("side",)
