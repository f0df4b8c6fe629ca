"""Drawing a demo scene: frame t of a `Scene`'s performance, and the clips cut from it.

The figures are stick drawings: a person (torso, head, two-part arms and legs) and a four-legged animal (a
dog that trots, a horse that gallops), posed as a function of the frame number, so any frame can be drawn
without the ones before it.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from har.datasets.demo_scenes import CLIP_FRAMES, HEIGHT, WIDTH, Scene


def render_clips(scene: Scene, clips: int) -> list[list[np.ndarray]]:
    """Cuts `clips` consecutive clips from the scene's performance: lists of (HEIGHT, WIDTH, 3) uint8 BGR frames.

    Clips last CLIP_FRAMES frames; a short gap (as when a UCF50 video is cut into clips) lies between two.
    """
    rng = np.random.default_rng(scene.seed)
    lengths = rng.integers(CLIP_FRAMES[0], CLIP_FRAMES[1] + 1, clips)
    gaps = rng.integers(0, 15, clips)
    starts = np.cumsum(gaps + np.concatenate([[0], lengths[:-1]]))
    noise_bank = [rng.normal(0, scene.noise, (HEIGHT, WIDTH, 3)).astype(np.float32) for _ in range(4)]
    result = []
    for start, length in zip(starts, lengths):
        frames = []
        for t in range(int(start), int(start + length)):
            noise = np.roll(noise_bank[t % 4], tuple(rng.integers(0, [HEIGHT, WIDTH])), axis=(0, 1))
            frames.append(render_frame(scene, t, noise, rng))
        result.append(frames)
    return result


def render_frame(scene: Scene, t: int, noise: np.ndarray | None = None, rng: np.random.Generator | None = None):
    """Frame `t` of the scene's performance, (HEIGHT, WIDTH, 3) uint8 BGR; `noise` (float32, same shape) is added."""
    camera = scene.follow * scene.speed * t + scene.pan * math.sin(2 * math.pi * t / scene.pan_period)
    left = min(max(int(round(camera)) + scene.origin, 0), scene.background.shape[1] - WIDTH)
    frame = scene.background[:, left : left + WIDTH].copy()
    offset = left - scene.origin  # world x of the frame's left edge
    for distractor in scene.distractors:
        _draw_distractor(frame, distractor, t, offset)
    _ACTIONS[scene.class_name](frame, scene, t, offset)
    for world_x, width, top, colour, parallax in scene.occluders:
        x = (world_x - offset * parallax) % (WIDTH + 60) - 30
        cv2.rectangle(frame, (int(x), int(top)), (int(x + width), HEIGHT), colour, -1)
    if scene.shake or scene.tilt:
        jitter = rng.normal(0, 0.3 * scene.shake, 2) if rng is not None else (0, 0)
        dx = scene.shake * math.sin(0.9 * t + scene.phase) + jitter[0]
        dy = scene.shake * math.sin(1.3 * t + 2 * scene.phase) + jitter[1]
        matrix = cv2.getRotationMatrix2D((WIDTH / 2, HEIGHT / 2), scene.tilt, 1.0 + abs(scene.tilt) / 60)
        matrix[:, 2] += (dx, dy)
        frame = cv2.warpAffine(frame, matrix, (WIDTH, HEIGHT), borderMode=cv2.BORDER_REFLECT)
    if scene.blur:
        frame = cv2.blur(frame, (scene.blur, scene.blur))
    gain = scene.gain * (1 + scene.flicker * math.sin(0.7 * t))
    image = frame.astype(np.float32) * gain + scene.offset
    if noise is not None:
        image += noise
    frame = np.clip(image, 0, 255).astype(np.uint8)
    if scene.jpeg:
        frame = cv2.imdecode(cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, scene.jpeg])[1], cv2.IMREAD_COLOR)
    return frame


# Distractors, figures and actions ---------------------------------------------------------------------------


def _draw_distractor(frame, distractor, t, offset) -> None:
    kind, colour, x0, velocity = distractor[:4]
    x = (x0 + velocity * t - offset) % (WIDTH + 80) - 40
    if kind == "ball":
        radius, height, period = distractor[4:]
        y = HEIGHT - 10 - height * abs(math.sin(math.pi * t / period))
        cv2.circle(frame, (int(x), int(y)), int(radius), colour, -1, cv2.LINE_AA)
    elif kind == "bird":
        y, size = distractor[4:]
        flap = size * 0.6 * math.sin(0.8 * t)
        points = np.array([(x - size, y - flap), (x, y), (x + size, y - flap)], np.int32)
        cv2.polylines(frame, [points], False, colour, 1, cv2.LINE_AA)
    elif kind == "car":
        y, length = distractor[4:]
        cv2.rectangle(frame, (int(x), int(y - 0.4 * length)), (int(x + length), int(y)), colour, -1)
        for wheel in (0.2, 0.8):
            cv2.circle(frame, (int(x + wheel * length), int(y)), max(2, int(0.12 * length)), (30, 30, 30), -1)
    else:  # a passer-by in the distance
        hip_y, size = distractor[4:]
        facing = 1 if velocity >= 0 else -1
        _draw_person(frame, (x, hip_y), size, _walking(0.25 * t, facing), colour, 1)


# Figures ------------------------------------------------------------------------------------------------------
# Angles are in degrees: 0 points down, +90 points right, 180 up. A pose gives (upper, lower) angles per limb.


def _point(origin, degrees, length):
    radians = math.radians(degrees)
    return origin[0] + length * math.sin(radians), origin[1] + length * math.cos(radians)


def _line(frame, a, b, colour, thickness) -> None:
    cv2.line(frame, (int(a[0]), int(a[1])), (int(b[0]), int(b[1])), colour, thickness, cv2.LINE_AA)


def _draw_person(frame, hip, size, pose, colour, thickness, lean=0.0) -> dict:
    """Draws a stick person with the hip at `hip` and torso length `size`; returns the hands' positions."""
    neck = _point(hip, 180 + lean, size)
    _line(frame, hip, neck, colour, thickness)
    head = _point(neck, 180 + lean, 0.3 * size)
    cv2.circle(frame, (int(head[0]), int(head[1])), max(2, int(0.3 * size)), colour, thickness, cv2.LINE_AA)
    hands = {}
    for side in ("left_arm", "right_arm"):
        upper, lower = pose[side]
        elbow = _point(neck, upper + lean, 0.55 * size)
        hands[side] = _point(elbow, lower + lean, 0.5 * size)
        _line(frame, neck, elbow, colour, thickness)
        _line(frame, elbow, hands[side], colour, thickness)
    for side in ("left_leg", "right_leg"):
        upper, lower = pose[side]
        knee = _point(hip, upper + lean, 0.6 * size)
        _line(frame, hip, knee, colour, thickness)
        _line(frame, knee, _point(knee, lower + lean, 0.6 * size), colour, thickness)
    return hands


def _draw_four_legs(frame, x, ground, length, phase, facing, colour, thickness, *, gallop: bool) -> tuple:
    """A four-legged animal of body `length`, feet on `ground`; returns the neck's position (for a lead)."""
    leg = 0.55 * length
    bob = 0.08 * length * abs(math.sin(phase)) if gallop else 0.03 * length * abs(math.sin(2 * phase))
    y = ground - leg - bob
    rear, front = (x - facing * length / 2, y), (x + facing * length / 2, y)
    _line(frame, rear, front, colour, thickness + 1)
    swing = 40 if gallop else 28
    # A trot moves diagonal legs together; a gallop moves the front pair, then the rear pair.
    offsets = (
        {"front_near": 0.0, "front_far": 0.5, "rear_near": math.pi, "rear_far": math.pi + 0.5}
        if gallop
        else {"front_near": 0.0, "front_far": math.pi, "rear_near": math.pi, "rear_far": 0.0}
    )
    for name, offset in offsets.items():
        hip = front if name.startswith("front") else rear
        angle = swing * math.sin(phase + offset)
        knee = _point(hip, facing * angle, 0.5 * leg)
        bend = facing * (-1 if name.startswith("front") else 1) * 35 * max(0.0, math.sin(phase + offset + 1.2))
        _line(frame, hip, knee, colour, thickness)
        _line(frame, knee, _point(knee, facing * angle + bend, 0.5 * leg + bob), colour, thickness)
    neck_angle = facing * (140 if gallop else 125)
    neck = _point(front, neck_angle, (0.55 if gallop else 0.3) * length)
    _line(frame, front, neck, colour, thickness + (1 if gallop else 0))
    head = _point(neck, facing * (70 if gallop else 95), (0.3 if gallop else 0.25) * length)
    _line(frame, neck, head, colour, thickness + 1)
    _line(frame, rear, _point(rear, -facing * (140 + 20 * math.sin(2 * phase)), 0.35 * length), colour, thickness)
    return neck


def _walking(phase, facing):
    swing = 28 * math.sin(phase)
    knee = 35 * max(0.0, math.sin(phase + math.pi / 2))
    return dict(
        left_arm=(-swing, -swing + facing * 15),
        right_arm=(swing, swing + facing * 15),
        left_leg=(swing, swing - facing * knee),
        right_leg=(-swing, -swing - facing * (35 - knee)),
    )


# Actions: each draws the class's figures at frame t; `offset` is the world x of the frame's left edge ----------


def _walking_with_dog(frame, scene: Scene, t, offset) -> None:
    phase = 2 * math.pi * scene.tempo * t + scene.phase
    x = scene.x + scene.speed * t - offset
    size = scene.scale
    hip = (x, scene.ground - 1.2 * size + 0.05 * size * abs(math.cos(phase)))
    pose = _walking(phase, scene.facing)
    lead_hand = "right_arm"
    pose[lead_hand] = (scene.facing * 35, scene.facing * 50)  # the arm holding the lead reaches forward
    extra = scene.extra
    dog_x = x + scene.facing * (extra["lead"] + extra["dog_wander"] * math.sin(0.05 * t + scene.phase))
    neck = _draw_four_legs(
        frame,
        dog_x,
        scene.ground,
        extra["dog_size"],
        1.6 * phase,
        scene.facing,
        extra["dog_colour"],
        max(1, scene.thickness - 1),
        gallop=False,
    )
    hands = _draw_person(frame, hip, size, pose, scene.colour, scene.thickness)
    hand = hands[lead_hand]
    sag = (hand[0] + neck[0]) / 2, max(hand[1], neck[1]) + 0.3 * size
    points = np.array([hand, sag, neck], np.int32)
    cv2.polylines(frame, [points], False, extra["dog_colour"], 1, cv2.LINE_AA)


def _tai_chi(frame, scene: Scene, t, offset) -> None:
    phase = 2 * math.pi * scene.tempo * t + scene.phase
    size, facing = scene.scale, scene.facing
    rise = (1 - math.cos(phase)) / 2  # arms float up and sink back, once a cycle
    sway = 0.3 * size * math.sin(phase)
    crouch = 0.15 * size * rise
    hip = (scene.x - offset + sway, scene.ground - 1.2 * size + crouch)
    lift = max(0.0, math.sin(phase / 2)) ** 2  # one leg rises slowly every other cycle
    upper = facing * (30 + 85 * rise)
    pose = dict(
        left_arm=(upper + facing * 15 * math.sin(phase + 1), upper + facing * (40 - 50 * rise)),
        right_arm=(upper - facing * 20 * math.cos(phase), upper + facing * (60 * math.sin(phase))),
        left_leg=(-facing * (18 + 6 * rise), -facing * (4 + 6 * rise)),
        right_leg=(facing * (18 + 55 * lift), facing * (18 + 55 * lift) - facing * 70 * lift),
    )
    _draw_person(frame, hip, size, pose, scene.colour, scene.thickness, lean=-facing * 6 * math.sin(phase))


def _swing(frame, scene: Scene, t, offset) -> None:
    phase = 2 * math.pi * scene.tempo * t + scene.phase
    extra, size, facing = scene.extra, scene.scale, scene.facing
    pivot = (scene.x - offset, extra["top"])
    length = extra["length"]
    colour = extra["frame_colour"]
    # The swing set: a top bar on two A-shaped legs.
    half = 0.75 * length
    _line(frame, (pivot[0] - half, pivot[1]), (pivot[0] + half, pivot[1]), colour, 2)
    feet = scene.ground + 2
    for end in (-half, half):
        for spread in (-0.25, 0.25):
            _line(frame, (pivot[0] + end, pivot[1]), (pivot[0] + end + spread * length, feet), colour, 2)
    angle = extra["amplitude"] * math.sin(phase)  # pendulum: degrees from the vertical
    seat = _point(pivot, facing * angle, length)
    rope_colour = tuple(int(0.7 * c) for c in colour)
    _line(frame, pivot, seat, rope_colour, 1)
    seat_ends = _point(seat, facing * (angle + 90), 0.35 * size), _point(seat, facing * (angle - 90), 0.35 * size)
    _line(frame, *seat_ends, colour, 2)
    # Seated, leaning back and stretching the legs on the way forward, tucking them on the way back.
    pump = math.cos(phase)
    lean = facing * (angle - 12 * pump)
    thigh = facing * (angle + 90 - 10 * pump)
    shin = facing * (angle + 20 + 45 * max(0.0, pump))
    grip = facing * (angle + 180 - 25)
    pose = dict(
        left_arm=(grip, grip + facing * 20),
        right_arm=(grip - facing * 10, grip + facing * 10),
        left_leg=(thigh, shin),
        right_leg=(thigh + facing * 8, shin + facing * 8),
    )
    _draw_person(
        frame,
        seat,
        size,
        {k: (a - lean, b - lean) for k, (a, b) in pose.items()},
        scene.colour,
        scene.thickness,
        lean=lean,
    )


def _horse_race(frame, scene: Scene, t, offset) -> None:
    size = scene.scale
    for lane, (start, depth, pace, phase0, coat, silks) in enumerate(scene.extra["horses"]):
        x = scene.x + start + scene.speed * pace * t - offset
        ground = scene.ground - 0.4 * size * len(scene.extra["horses"]) + depth + 0.4 * size * lane
        length = size * (1.3 + 0.1 * lane)
        phase = 2 * math.pi * scene.tempo * pace * t + phase0
        neck = _draw_four_legs(frame, x, ground, length, phase, scene.facing, coat, scene.thickness, gallop=True)
        # The rider crouches over the withers.
        back = (x + scene.facing * 0.15 * length, ground - 0.6 * length - 0.08 * length * abs(math.sin(phase)))
        shoulder = _point(back, scene.facing * 125, 0.45 * size)
        _line(frame, back, shoulder, silks, scene.thickness + 1)
        head = _point(shoulder, scene.facing * 115, 0.22 * size)
        cv2.circle(frame, (int(head[0]), int(head[1])), max(2, int(0.18 * size)), silks, -1, cv2.LINE_AA)
        _line(frame, shoulder, neck, silks, 1)


_ACTIONS = {"WalkingWithDog": _walking_with_dog, "TaiChi": _tai_chi, "Swing": _swing, "HorseRace": _horse_race}
