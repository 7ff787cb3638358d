"""Procedural face crops in NumPy, for the synthetic audio-visual speakers.

A face is drawn as soft-edged shapes on a (size, size) canvas whose coordinates run over
[-1, 1] (y down): a head ellipse narrowing towards the jaw, hair (a cap, and for longer hair a
mass behind the head), neck, eyes (sclera, iris, pupil), brows, a nose shadow, lips and a
mouth opening, and an optional beard shadow. `Face` holds what belongs to the identity;
`Scene` what belongs to one video (background, light); `Pose` what changes per utterance.
Lighting is a linear shading across the head plus a colour cast; pixels get sensor noise.
"""
from typing import NamedTuple

import numpy as np

SKIN_LIGHT = np.array([0.96, 0.80, 0.69])
SKIN_DARK = np.array([0.36, 0.22, 0.14])
HAIR_COLOURS = np.array([[0.08, 0.06, 0.05], [0.25, 0.15, 0.08], [0.45, 0.30, 0.15],
                         [0.80, 0.65, 0.40], [0.55, 0.22, 0.08]])  # black, brown, light brown, blond, red
GREY_HAIR = np.array([0.78, 0.78, 0.76])
IRIS_COLOURS = np.array([[0.30, 0.18, 0.08], [0.25, 0.45, 0.70], [0.30, 0.50, 0.30], [0.45, 0.35, 0.20]])


class Face(NamedTuple):
  """One identity's face, in canvas units (the canvas spans [-1, 1])."""
  width: float         # head half-width
  height: float        # head half-height
  jaw: float           # how much the head narrows towards the chin (0: an ellipse)
  skin: np.ndarray     # (3,) RGB in [0, 1]
  hair: np.ndarray     # (3,)
  hair_down: float     # 0 short hair .. 1 hair to the shoulders
  hairline: float      # y of the hairline at the centre, as a fraction of height (negative: up)
  eye_spacing: float   # half the distance between the eyes
  eye_y: float
  eye_size: np.ndarray  # (2,) half-width, half-height
  iris: np.ndarray     # (3,)
  brow: float          # brow thickness
  nose: float          # nose length
  mouth_y: float
  mouth_width: float   # half-width
  lips: np.ndarray     # (3,)
  beard: float         # 0 none .. 1 full beard shadow


class Scene(NamedTuple):
  """One video's look: background, light direction and strength, colour cast, noise."""
  background: np.ndarray  # (3,)
  gradient: np.ndarray    # (2,) background brightness slope along x, y
  light: np.ndarray       # (2,) shading slope across the head along x, y
  brightness: float
  cast: np.ndarray        # (3,) per-channel gain
  noise: float            # pixel noise s.d.


class Pose(NamedTuple):
  """One utterance's head pose and expression."""
  yaw: float    # radians, turning left/right
  pitch: float  # radians, nodding
  roll: float   # radians, tilting in the image plane
  shift: np.ndarray  # (2,) translation of the crop, canvas units
  scale: float  # zoom of the crop
  smile: float  # 0..1
  brows_up: float  # 0..1


def random_face(rng: np.random.Generator, male: bool, age: float) -> Face:
  """A face of the given sex (broader face, squarer jaw, maybe a beard) and age in years (hair
  greys from about 35); everything else is drawn independently."""
  g = 1.0 if male else -1.0
  grey = float(np.clip((age - 35.0) / 35.0 + rng.normal(0, 0.15), 0, 1))
  hair = HAIR_COLOURS[rng.integers(len(HAIR_COLOURS))] * rng.uniform(0.85, 1.15)
  skin_tone = rng.uniform()
  skin = (1 - skin_tone) * SKIN_LIGHT + skin_tone * SKIN_DARK + rng.normal(0, 0.02, 3)
  return Face(
      width=float(0.56 + 0.04 * g + rng.normal(0, 0.02)),
      height=float(0.76 + rng.normal(0, 0.03)),
      jaw=float(np.clip(0.24 - 0.10 * g + rng.normal(0, 0.04), 0.0, 0.45)),
      skin=np.clip(skin, 0, 1),
      hair=np.clip((1 - grey) * hair + grey * GREY_HAIR, 0, 1),
      hair_down=float(rng.choice([0.0, 0.0, 0.35, 0.7, 1.0])),
      hairline=float(rng.uniform(-0.62, -0.42)),
      eye_spacing=float(rng.uniform(0.17, 0.23)),
      eye_y=float(rng.uniform(-0.14, -0.05)),
      eye_size=np.array([rng.uniform(0.065, 0.085), rng.uniform(0.030, 0.042)]),
      iris=IRIS_COLOURS[rng.integers(len(IRIS_COLOURS))],
      brow=float(rng.uniform(0.012, 0.028)),
      nose=float(rng.uniform(0.14, 0.22)),
      mouth_y=float(rng.uniform(0.30, 0.38)),
      mouth_width=float(rng.uniform(0.10, 0.15)),
      lips=np.clip(skin * np.array([1.0, 0.72, 0.72]) + rng.normal(0, 0.02, 3), 0, 1),
      beard=float(rng.uniform(0.3, 0.8)) if male and rng.random() < 0.45 else 0.0)


def random_scene(rng: np.random.Generator) -> Scene:
  """A random video look: background colour and gradient, light, colour cast, noise."""
  return Scene(background=rng.uniform(0.1, 0.9, 3), gradient=rng.normal(0, 0.15, 2),
               light=rng.normal(0, 0.15, 2), brightness=float(rng.uniform(0.75, 1.15)),
               cast=np.exp(rng.normal(0, 0.06, 3)), noise=float(rng.uniform(0.005, 0.03)))


def random_pose(rng: np.random.Generator) -> Pose:
  """A random utterance pose and expression: yaw up to about 25 degrees, small pitch and roll."""
  return Pose(yaw=float(rng.normal(0, 0.2)), pitch=float(rng.normal(0, 0.1)),
              roll=float(rng.normal(0, 0.08)), shift=rng.normal(0, 0.04, 2),
              scale=float(np.exp(rng.normal(0, 0.05))), smile=float(rng.beta(1.2, 3)),
              brows_up=float(rng.beta(1.2, 4)))


def _ellipse(x, y, a, b, px: float) -> np.ndarray:
  """Coverage (..., 1) of the ellipse (x / a)^2 + (y / b)^2 < 1, soft over one pixel `px`: the
  signed distance to its edge is taken as (q - 1) / |grad q| with q = hypot(x / a, y / b)."""
  q = np.maximum(np.hypot(x / a, y / b), 1e-6)
  grad = np.hypot(x / a ** 2, y / b ** 2) / q
  return np.clip(0.5 - (q - 1) / np.maximum(grad, 1e-6) / px, 0.0, 1.0)[..., None]


def _beyond(v, edge, px: float) -> np.ndarray:
  """Coverage (..., 1) of the half-plane v > edge, soft over one pixel `px`."""
  return np.clip(0.5 + (v - edge) / px, 0.0, 1.0)[..., None]


def render(face: Face, scene: Scene, pose: Pose, mouth_open: float, blink: float = 0.0,
           size: int = 64, rng: np.random.Generator | None = None) -> np.ndarray:
  """One frame: uint8 (size, size, 3). `mouth_open` in [0, 1] (0 closed); `blink` in [0, 1]."""
  px = 2.0 / size
  c = (np.arange(size) + 0.5) * px - 1.0
  y0, x0 = np.meshgrid(c, c, indexing="ij")
  slope = scene.gradient[0] * x0 + scene.gradient[1] * y0
  img = np.clip(scene.background + slope[..., None], 0, 1)
  # Face-local coordinates: undo the crop's shift and zoom, then the roll.
  xs, ys = (x0 - pose.shift[0]) / pose.scale, (y0 - pose.shift[1] - 0.05) / pose.scale
  cr, sr = np.cos(pose.roll), np.sin(pose.roll)
  x, y = cr * xs + sr * ys, -sr * xs + cr * ys
  w = face.width * (1 - 0.12 * abs(np.sin(pose.yaw)))  # a turned head looks narrower
  h = face.height
  turn, nod = 0.35 * w * np.sin(pose.yaw), 0.25 * h * np.sin(pose.pitch)  # features move with the pose
  paint = lambda img, cover, colour: img * (1 - cover) + cover * np.asarray(colour)
  hair = face.hair
  px = px / pose.scale  # a pixel in face-local units
  if face.hair_down > 0:  # hair behind the head, down to the shoulders for long hair
    bottom = 0.2 * h + 0.9 * h * face.hair_down
    cover = np.where(y[..., None] < 0, _ellipse(x, y, 1.2 * w, 1.08 * h, px),
                     _beyond(1.2 * w, np.abs(x), px)) * _beyond(bottom, y, px)
    img = paint(img, cover, hair * 0.85)
  neck = np.minimum(_beyond(0.42 * w, np.abs(x), px), _beyond(y, 0.55 * h, px))
  img = paint(img, neck, face.skin * 0.8)
  rx = w * (1 - face.jaw * np.clip(y / h, 0, 1) ** 2)  # narrowing towards the chin
  head = _ellipse(x - 0.2 * turn, y, rx, h, px)
  shade = 1 + scene.light[0] * x[..., None] / w + scene.light[1] * y[..., None] / h
  img = paint(img, head, face.skin * shade)
  if face.beard > 0:  # a beard shadow over the jaw and chin
    cover = head * _beyond(y, face.mouth_y - 0.06 + nod, px) * face.beard
    img = paint(img, cover, 0.5 * face.skin * shade + 0.5 * hair * 0.6)
  hairline = face.hairline * h + 0.35 * h * ((x - turn) / w) ** 2 + 0.5 * nod
  top = _ellipse(x, y + 0.02, 1.07 * w, 1.05 * h, px) * _beyond(hairline, y, px)
  img = paint(img, top, hair * shade)
  ex, ey = face.eye_size
  eye_h = max(ey * (1 - 0.9 * blink), 1e-3)
  for side in (-1.0, 1.0):
    cx, cy = side * face.eye_spacing + turn, face.eye_y + nod
    sclera = _ellipse(x - cx, y - cy, ex, eye_h, px)
    img = paint(img, sclera, np.array([0.92, 0.92, 0.9]) * shade)
    iris = sclera * _ellipse(x - cx - 0.3 * turn, y - cy, 0.85 * ey, 0.85 * ey, px)
    img = paint(img, iris, face.iris)
    pupil = sclera * _ellipse(x - cx - 0.3 * turn, y - cy, 0.4 * ey, 0.4 * ey, px)
    img = paint(img, pupil, np.zeros(3))
    by = cy - 1.9 * ey - 0.05 * pose.brows_up
    img = paint(img, _ellipse(x - cx, y - by, 1.25 * ex, face.brow, px), hair * 0.7)
  nose = _ellipse(x - 1.3 * turn - 0.02, y - face.nose / 2 - nod, 0.035, face.nose / 2, px)
  img = paint(img, 0.5 * nose, face.skin * shade * 0.75)
  mx, my = turn, face.mouth_y + nod
  mw = face.mouth_width * (1 + 0.25 * pose.smile)
  ym = y - my + 0.05 * pose.smile * np.clip((x - mx) / mw, -1, 1) ** 2  # smiling lifts the corners
  opening = 0.004 + 0.07 * float(np.clip(mouth_open, 0, 1))
  img = paint(img, _ellipse(x - mx, ym, mw, opening + 0.022, px), face.lips * shade)
  img = paint(img, _ellipse(x - mx, ym, 0.85 * mw, opening, px), np.array([0.18, 0.05, 0.05]))
  img = img * scene.brightness * scene.cast
  if rng is not None:
    img = img + rng.normal(0, scene.noise, img.shape)
  return np.clip(np.round(img * 255), 0, 255).astype(np.uint8)
