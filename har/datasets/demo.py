"""The built-in demo dataset: synthetic stick figures performing four actions, written as real XVID videos.

It exists so that everything works with no internet: generated in seconds, deterministic for a seed, and in
the UCF50 layout (`<Class>/v_<Class>_gXX_cYY.avi`), so the same pipeline reads it. Like UCF50, the clips of
one group share a "scene" (background, figure colour and size), and the rest varies per clip: position,
speed, direction, phase, a bouncing distractor ball, camera shake and sensor noise. Only the body motion
tells the classes apart.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

DEMO_CLASSES = ("JumpingJacks", "Squats", "Walking", "Waving")
WIDTH, HEIGHT, FPS = 160, 120, 25


def generate_demo(
    out: str | Path,
    *,
    groups: int = 8,
    clips_per_group: int = 4,
    seed: int = 27,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Writes the demo dataset to `out` (skipped when `out` already holds one made with the same settings).

    Args:
        out: dataset folder to create, holding one folder per class.
        groups: scenes per class (UCF50 has 25).
        clips_per_group: clips per scene.
        seed: makes the whole dataset reproducible.
        progress: called with (clips written, clips total).
    """
    out = Path(out)
    if groups < 1 or clips_per_group < 1:
        raise ValueError(f"groups={groups} and clips_per_group={clips_per_group} must be at least 1.")
    settings = {"classes": list(DEMO_CLASSES), "groups": groups, "clips_per_group": clips_per_group, "seed": seed}
    marker = out / "demo.json"
    if marker.is_file() and json.loads(marker.read_text()) == settings:
        return out
    staging = out.with_name(f".{out.name}.generating")
    shutil.rmtree(staging, ignore_errors=True)
    total, done = len(DEMO_CLASSES) * groups * clips_per_group, 0
    try:
        for class_index, class_name in enumerate(DEMO_CLASSES):
            (staging / class_name).mkdir(parents=True)
            for group in range(1, groups + 1):
                scene = _Scene(np.random.default_rng([seed, class_index, group]))
                for clip in range(1, clips_per_group + 1):
                    rng = np.random.default_rng([seed, class_index, group, clip])
                    path = staging / class_name / f"v_{class_name}_g{group:02d}_c{clip:02d}.avi"
                    _write_clip(path, scene.render(class_name, rng))
                    done += 1
                    if progress:
                        progress(done, total)
        (staging / "demo.json").write_text(json.dumps(settings))
        shutil.rmtree(out, ignore_errors=True)
        out.parent.mkdir(parents=True, exist_ok=True)
        staging.replace(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out


def _write_clip(path: Path, frames: list[np.ndarray]) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"XVID"), FPS, (WIDTH, HEIGHT))
    if not writer.isOpened():
        raise RuntimeError(f"{path}: OpenCV cannot write XVID video on this machine.")
    for frame in frames:
        writer.write(frame)
    writer.release()


class _Scene:
    """What the clips of one group share: background, figure colour, size and line width."""

    def __init__(self, rng: np.random.Generator):
        self.background = _background(rng)
        bright = self.background.mean() > 110
        self.colour = tuple(int(c) for c in (rng.integers(0, 70, 3) if bright else rng.integers(180, 256, 3)))
        self.size = rng.uniform(16, 26)  # torso length in pixels
        self.thickness = int(rng.integers(2, 4))

    def render(self, class_name: str, rng: np.random.Generator) -> list[np.ndarray]:
        frame_count = int(rng.integers(40, 90))
        period = rng.uniform(10, 26)  # frames per movement cycle
        phase = rng.uniform(0, 2 * math.pi)
        facing = rng.choice([-1, 1])
        size = self.size * rng.uniform(0.9, 1.1)
        hip_x = rng.uniform(0.3, 0.7) * WIDTH
        hip_y = HEIGHT * rng.uniform(0.5, 0.6)
        walk_speed = rng.uniform(0.6, 1.4) * facing
        if class_name == "Walking":
            hip_x = WIDTH / 2 - walk_speed * frame_count / 2
        ball = _Ball(rng) if rng.random() < 0.6 else None
        noise = rng.uniform(3, 10)
        frames = []
        for t in range(frame_count):
            angle = 2 * math.pi * t / period + phase
            pose = _POSES[class_name](angle, facing, rng)
            x = hip_x + (walk_speed * t if class_name == "Walking" else 0)
            frame = self.background.copy()
            if ball:
                ball.draw(frame, t)
            _draw_figure(frame, (x, hip_y - pose.pop("lift") * size), size, pose, self.colour, self.thickness)
            shake = rng.integers(-2, 3, 2)
            frame = np.roll(frame, tuple(shake), axis=(0, 1))
            frame = np.clip(frame + rng.normal(0, noise, frame.shape), 0, 255).astype(np.uint8)
            frames.append(frame)
        return frames


def _background(rng: np.random.Generator) -> np.ndarray:
    top, bottom = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    ramp = np.linspace(0, 1, HEIGHT)[:, None, None]
    image = np.broadcast_to(top * (1 - ramp) + bottom * ramp, (HEIGHT, WIDTH, 3)).copy()
    for _ in range(rng.integers(2, 7)):  # buildings, trees, furniture
        x, y = rng.integers(0, WIDTH), rng.integers(0, HEIGHT)
        w, h = rng.integers(10, 60), rng.integers(10, 60)
        image[y : y + h, x : x + w] = rng.integers(0, 256, 3)
    ground = int(HEIGHT * rng.uniform(0.75, 0.9))
    image[ground:] = image[ground:] * 0.5 + rng.integers(0, 256, 3) * 0.5
    return image.astype(np.uint8)


class _Ball:
    def __init__(self, rng: np.random.Generator):
        self.start = rng.uniform([0, 0], [WIDTH, HEIGHT])
        self.velocity = rng.uniform(-3, 3, 2)
        self.radius = int(rng.integers(3, 8))
        self.colour = tuple(int(c) for c in rng.integers(0, 256, 3))

    def draw(self, frame: np.ndarray, t: int) -> None:
        x, y = (self.start + self.velocity * t) % [WIDTH, HEIGHT]
        cv2.circle(frame, (int(x), int(y)), self.radius, self.colour, -1, cv2.LINE_AA)


# Each pose gives limb angles in degrees (0 points down, +90 points right) and `lift`, how far the hip rises
# above its rest height, in torso lengths. `facing` mirrors the figure.
def _jumping_jacks(angle, facing, rng):
    spread = (1 - math.cos(angle)) / 2
    arm, leg = 20 + 150 * spread, 5 + 25 * spread
    return dict(left_arm=(-arm, -arm), right_arm=(arm, arm), left_leg=(-leg, -leg), right_leg=(leg, leg),
                lift=0.25 * abs(math.sin(angle)))  # fmt: skip


def _squats(angle, facing, rng):
    depth = (1 - math.cos(angle)) / 2
    thigh, shin, arm = facing * 75 * depth, -facing * 30 * depth, facing * (10 + 80 * depth)
    return dict(left_arm=(arm, arm), right_arm=(arm, arm), left_leg=(thigh, shin), right_leg=(thigh, shin),
                lift=-0.5 * depth)  # fmt: skip


def _walking(angle, facing, rng):
    swing = 28 * math.sin(angle)
    knee = 35 * max(0.0, math.sin(angle + math.pi / 2))
    return dict(left_arm=(-swing, -swing + facing * 15), right_arm=(swing, swing + facing * 15),
                left_leg=(swing, swing - facing * knee), right_leg=(-swing, -swing - facing * (35 - knee)),
                lift=0.05 * abs(math.cos(angle)))  # fmt: skip


def _waving(angle, facing, rng):
    wave = facing * (160 + 35 * math.sin(angle))
    raised, lowered = (facing * 120, wave), (-facing * 12, -facing * 8)
    arms = dict(right_arm=raised, left_arm=lowered) if facing > 0 else dict(left_arm=raised, right_arm=lowered)
    return dict(**arms, left_leg=(-8, -8), right_leg=(8, 8), lift=0.0)


_POSES = {"JumpingJacks": _jumping_jacks, "Squats": _squats, "Walking": _walking, "Waving": _waving}


def _draw_figure(frame, hip, size, pose, colour, thickness) -> None:
    def point(origin, degrees, length):
        radians = math.radians(degrees)
        return origin[0] + length * math.sin(radians), origin[1] + length * math.cos(radians)

    def line(a, b):
        cv2.line(frame, (int(a[0]), int(a[1])), (int(b[0]), int(b[1])), colour, thickness, cv2.LINE_AA)

    neck = (hip[0], hip[1] - size)
    line(hip, neck)
    cv2.circle(frame, (int(neck[0]), int(neck[1] - 0.3 * size)), int(0.3 * size), colour, thickness, cv2.LINE_AA)
    for side in ("left_arm", "right_arm"):
        upper, lower = pose[side]
        elbow = point(neck, upper, 0.55 * size)
        line(neck, elbow)
        line(elbow, point(elbow, lower, 0.5 * size))
    for side in ("left_leg", "right_leg"):
        upper, lower = pose[side]
        knee = point(hip, upper, 0.6 * size)
        line(hip, knee)
        line(knee, point(knee, lower, 0.6 * size))
