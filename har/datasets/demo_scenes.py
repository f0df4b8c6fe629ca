"""What one demo group (one UCF50-like performance) is: a `Scene`, drawn at random by `sample_scene`.

Every number a group's clips share is chosen here: the actor's size, colours, speed and position, the
background, the camera's motion and the picture's defects. `har.datasets.demo_drawing` renders a scene's
frames and `har.datasets.demo` writes them as videos. The order in which `sample_scene` draws from its
generator is part of the dataset: changing it changes every demo clip (bump `har.datasets.demo.VERSION`).
"""

from __future__ import annotations

import dataclasses
import math

import cv2
import numpy as np

DEMO_CLASSES = ("WalkingWithDog", "TaiChi", "Swing", "HorseRace")  # the order of har.config.REPORT_CLASSES
WIDTH, HEIGHT, FPS = 160, 120, 25
CLIP_FRAMES = (40, 56)  # frames per clip, inclusive range: about two seconds at 25 fps


@dataclasses.dataclass(frozen=True)
class Scene:
    """Everything one group (one performance) shares. Lengths are in pixels, times in frames.

    The motion of every figure, the camera and the distractors is a function of the frame number, so a clip
    can be rendered without the frames before it.
    """

    class_name: str
    seed: int  # for the per-frame randomness (shake jitter, noise) and the clip cuts
    background: np.ndarray  # (HEIGHT, width, 3) uint8 BGR, wider than a frame when the camera pans
    origin: int  # the background's column at world x 0
    ground: float  # y of the feet
    scale: float  # torso length of a person
    colour: tuple[int, int, int]  # the actor's
    thickness: int
    facing: int  # +1: the actor faces (and moves) right; -1: left
    x: float  # world x of the actor at frame 0
    tempo: float  # cycles per frame of the action
    phase: float
    speed: float  # world pixels per frame (walkers, horses)
    follow: float  # how much of the actor's travel the camera follows, 0..1
    pan: float  # amplitude of a slow back-and-forth camera pan
    pan_period: float
    shake: float  # camera shake amplitude
    tilt: float  # camera roll in degrees
    gain: float  # lighting: frame * gain + offset
    offset: float
    flicker: float
    noise: float  # standard deviation of sensor noise
    jpeg: int  # JPEG quality each frame passes through; 0 for none
    blur: int  # box-blur size (defocus), 0 for none
    occluders: tuple[tuple, ...]  # (world x, width, top, colour, parallax)
    distractors: tuple[tuple, ...]  # (kind, parameters...)
    extra: dict  # the class's own parameters


def sample_scene(class_name: str, rng: np.random.Generator) -> Scene:
    """Draws one group's scene for `class_name` from `rng`."""
    if class_name not in DEMO_CLASSES:
        raise ValueError(f"class_name={class_name!r}: choose one of {', '.join(DEMO_CLASSES)}.")
    scale = rng.uniform(13, 22)
    # Muted scenery, so that the figures stand out from it; its brightness decides the figures' colours.
    base = rng.uniform(50, 210) + rng.normal(0, 25, 3)
    bright = float(base.mean())
    ground = HEIGHT * rng.uniform(0.72, 0.92)
    facing = int(rng.choice([-1, 1]))
    speed_factor = rng.uniform(0.75, 1.35)
    tempo, speed, follow, extra = _ACTION_SAMPLERS[class_name](rng, scale, bright, ground, facing, speed_factor)
    pan = rng.uniform(0, 35) if rng.random() < 0.7 else 0.0
    frames_needed = 8 * CLIP_FRAMES[1]  # a performance long enough for 8 clips of the longest kind
    travel = abs(speed) * follow * frames_needed
    origin = int(WIDTH + pan + (travel if speed < 0 else 0))
    background = _background(
        rng,
        base,
        int(travel + 2 * pan + 3 * WIDTH),
        ground,
        rails=class_name == "HorseRace" or rng.random() < 0.15,
        rail_colour=extra.get("rail_colour"),
        post_gap=extra.get("post_gap", 25),
    )
    colour = _colour(rng, avoid=bright)
    return Scene(
        class_name=class_name,
        background=background,
        origin=origin,
        ground=ground,
        scale=scale,
        colour=colour,
        facing=facing,
        tempo=tempo,
        speed=speed,
        follow=follow,
        pan=pan,
        extra=extra,
        **_looks(rng, ground),
    )


def _looks(rng: np.random.Generator, ground: float) -> dict:
    """The scene's remaining fields: randomness seed, line thickness, start, camera, lighting and defects."""
    # A dict display evaluates in order, so the draws below come in the order the dataset was made with.
    return dict(
        seed=int(rng.integers(2**31)),
        thickness=int(rng.integers(2, 4)),
        x=WIDTH / 2 + rng.uniform(-0.25, 0.25) * WIDTH,
        phase=rng.uniform(0, 2 * math.pi),
        pan_period=rng.uniform(120, 300),
        shake=rng.uniform(0, 3) if rng.random() < 0.6 else 0.0,
        tilt=rng.uniform(-7, 7) if rng.random() < 0.5 else 0.0,
        gain=rng.uniform(0.55, 1.3),
        offset=rng.uniform(-30, 30),
        flicker=rng.uniform(0, 0.1) if rng.random() < 0.3 else 0.0,
        noise=rng.uniform(2, 10),
        jpeg=int(rng.integers(20, 60)) if rng.random() < 0.3 else 0,
        blur=int(rng.choice([0, 0, 0, 3])),
        occluders=tuple(
            (
                rng.uniform(0, WIDTH),
                rng.uniform(4, 16),
                rng.uniform(0, 0.7) * HEIGHT,
                _colour(rng),
                rng.uniform(1.1, 1.6),
            )
            for _ in range(int(rng.choice([0, 0, 1, 2])))
        ),
        distractors=tuple(_distractor(rng, ground) for _ in range(int(rng.choice([0, 1, 1, 2, 3])))),
    )


# Each class's motion: (rng, scale, background brightness, ground, facing, speed factor) ->
# (tempo in cycles per frame, speed in world pixels per frame, camera follow, the class's own parameters).


def _walking_with_dog(rng, scale, bright, ground, facing, speed_factor) -> tuple[float, float, float, dict]:
    tempo = speed_factor / 28
    speed = facing * scale * 0.075 * speed_factor
    follow = rng.uniform(0.6, 1.0)
    extra = {
        "dog_size": scale * rng.uniform(0.9, 1.3),
        "dog_colour": _colour(rng, avoid=bright),
        "lead": scale * rng.uniform(1.4, 2.4),
        "dog_wander": rng.uniform(0, 0.3 * scale),
    }
    return tempo, speed, follow, extra


def _tai_chi(rng, scale, bright, ground, facing, speed_factor) -> tuple[float, float, float, dict]:
    return speed_factor / 95, 0.0, 0.0, {}


def _swing(rng, scale, bright, ground, facing, speed_factor) -> tuple[float, float, float, dict]:
    top = rng.uniform(4, 20)
    extra = {
        "top": top,
        "length": ground - top - scale * rng.uniform(0.9, 1.3),
        "amplitude": rng.uniform(18, 42),
        "frame_colour": _colour(rng, avoid=bright),
    }
    return speed_factor / 50, 0.0, 0.0, extra


def _horse_race(rng, scale, bright, ground, facing, speed_factor) -> tuple[float, float, float, dict]:
    tempo = speed_factor / 11
    speed = facing * scale * rng.uniform(0.2, 0.3) * speed_factor
    follow = rng.uniform(0.75, 1.0)
    count = int(rng.integers(3, 7))
    gap = rng.uniform(1.2, 2.2) * scale  # between one horse and the next along the track
    extra = {
        "horses": [
            (
                (i - count / 2) * gap + rng.uniform(-0.4, 0.4) * scale,
                i * rng.uniform(0.25, 0.45) * scale,
                rng.uniform(0.96, 1.04),
                rng.uniform(0, 2 * math.pi),
                _colour(rng, avoid=bright),
                _colour(rng),
            )
            for i in range(count)
        ],
        "rail_colour": _colour(rng, avoid=bright),
        "post_gap": rng.uniform(15, 35),
    }
    return tempo, speed, follow, extra


_ACTION_SAMPLERS = {"WalkingWithDog": _walking_with_dog, "TaiChi": _tai_chi, "Swing": _swing, "HorseRace": _horse_race}


# Scenery -----------------------------------------------------------------------------------------------------


def _colour(rng: np.random.Generator, avoid: float | None = None) -> tuple[int, int, int]:
    """A random BGR colour; with `avoid` (a brightness), one at least 60 levels darker or brighter than it."""
    if avoid is None:
        return tuple(int(c) for c in rng.integers(0, 256, 3))
    low, high = (0, max(int(avoid) - 60, 30)) if avoid > 128 else (min(int(avoid) + 60, 225), 256)
    return tuple(int(c) for c in rng.integers(low, high, 3))


def _background(rng, base, width, ground, *, rails, rail_colour=None, post_gap=25.0) -> np.ndarray:
    """Sky, buildings and ground around the colour `base` (3 floats), `width` pixels wide."""
    top, bottom = base + rng.normal(0, 25, 3), base + rng.normal(0, 25, 3)
    ramp = np.linspace(0, 1, HEIGHT)[:, None, None]
    image = np.ascontiguousarray(np.broadcast_to(top * (1 - ramp) + bottom * ramp, (HEIGHT, width, 3)), np.float32)
    for _ in range(int(rng.integers(2, 7) * width / WIDTH)):  # buildings, trees, furniture
        x, y = int(rng.integers(0, width)), int(rng.integers(0, int(ground)))
        w, h = int(rng.integers(8, 50)), int(rng.integers(10, 70))
        image[max(y - h, 0) : int(ground), x : x + w] = base + rng.uniform(-45, 45) + rng.normal(0, 12, 3)
    image[int(ground) - 2 :] = base * 0.7 + rng.normal(0, 20, 3)
    image = np.clip(image, 0, 255).astype(np.uint8)
    if rails:
        colour = rail_colour or _colour(rng)
        rail = int(ground - rng.uniform(8, 22))
        cv2.line(image, (0, rail), (width, rail), colour, 2)
        cv2.line(image, (0, rail + 5), (width, rail + 5), colour, 1)
        for x in np.arange(rng.uniform(0, post_gap), width, post_gap):
            cv2.line(image, (int(x), rail), (int(x), rail + 12), colour, 2)
    return image


def _distractor(rng: np.random.Generator, ground: float) -> tuple:
    kind = str(rng.choice(["ball", "bird", "car", "walker"]))
    colour = _colour(rng)
    if kind == "ball":
        return (
            kind,
            colour,
            rng.uniform(0, WIDTH),
            rng.uniform(-2.5, 2.5),
            rng.uniform(3, 7),
            rng.uniform(20, 60),
            rng.uniform(14, 30),
        )
    if kind == "bird":
        return (
            kind,
            colour,
            rng.uniform(0, WIDTH),
            rng.uniform(-3, 3),
            rng.uniform(5, 0.4 * HEIGHT),
            rng.uniform(3, 6),
        )
    if kind == "car":
        return (
            kind,
            colour,
            rng.uniform(0, WIDTH),
            rng.uniform(-3.5, 3.5),
            ground - rng.uniform(4, 25),
            rng.uniform(16, 34),
        )
    return (kind, colour, rng.uniform(0, WIDTH), rng.uniform(-0.7, 0.7), ground - rng.uniform(8, 30), rng.uniform(4, 8))
