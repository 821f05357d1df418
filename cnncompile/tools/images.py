"""`--images DIR`: a folder of pictures as input sets, read with Pillow.

Files are taken in name order (.png, .jpg/.jpeg, .bmp, .gif, .webp, .ppm/.pgm; anything else is not a
picture and is passed over). Each is converted to RGB for a 3-channel input and to greyscale for a
1-channel one, resized to --resize HxW (bilinear) when given, laid out as CHW, and normalized as the
user states (`Normalization`: scaled to 0..pixel_max, then (x - mean) / std). An (N,C,H,W) input takes
N pictures per set. A picture whose size is not the input's without --resize, or a count that does not
fill whole batches, is a ModelError saying what to give instead: nothing is cropped, padded or dropped
silently.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from cnncompile.errors import CnnCompileError, ModelError
from cnncompile.tools.inputs import InputSet, InputSpec, Normalization

SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".ppm", ".pgm"})
_MODES = {1: "L", 3: "RGB"}
_SIZE = re.compile(r"^(\d+)x(\d+)$")


def parse_resize(text: str) -> tuple[int, int]:
    """'224x224' -> (224, 224), height first."""
    match = _SIZE.match(text.strip())
    if not match or 0 in (int(match[1]), int(match[2])):
        raise CnnCompileError(f"--resize '{text}' is not HxW with positive sizes, e.g. --resize 224x224")
    return int(match[1]), int(match[2])


def _image_input(specs: Sequence[InputSpec]) -> InputSpec:
    images = [s for s in specs if len(s.shape) == 4 and s.shape[1] in _MODES and s.dtype.is_float]
    if len(specs) != 1 or len(images) != 1:
        raise ModelError(f"--images feeds a model with one float input shaped (N,1|3,H,W); this one takes "
                         f"{', '.join(map(str, specs))}: give --input or --inputs instead")
    return images[0]


def _picture(path: Path, spec: InputSpec, resize: tuple[int, int] | None) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    _, channels, height, width = spec.shape
    try:
        with Image.open(path) as image:
            image = image.convert(_MODES[channels])
            if resize is not None:
                image = image.resize((resize[1], resize[0]), Image.Resampling.BILINEAR)
            pixels = np.asarray(image, np.float64)
    except (OSError, UnidentifiedImageError) as err:
        raise ModelError(f"--images: cannot read picture '{path}': {err}") from None
    if pixels.shape[:2] != (height, width):
        raise ModelError(f"--images: '{path}' is {pixels.shape[0]}x{pixels.shape[1]} (HxW) but input {spec} takes "
                         f"{height}x{width}; add --resize {height}x{width}")
    return pixels.reshape(height, width, channels).transpose(2, 0, 1)


def image_sets(directory: str | Path, specs: Sequence[InputSpec], normalization: Normalization = Normalization(),
               resize: tuple[int, int] | None = None) -> list[InputSet]:
    """One input set per batch of pictures in `directory`, in name order."""
    root = Path(directory)
    if not root.is_dir():
        raise ModelError(f"--images '{directory}' is not a directory; give a folder of pictures")
    spec = _image_input(specs)
    files = sorted(p for p in root.iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES)
    batch = spec.shape[0]
    if not files:
        raise ModelError(f"--images '{directory}' holds no pictures ({', '.join(sorted(SUFFIXES))})")
    if len(files) % batch:
        raise ModelError(f"--images '{directory}' holds {len(files)} pictures, which do not fill batches of {batch} "
                         f"(input {spec}); add or remove {batch - len(files) % batch} or "
                         f"{len(files) % batch}, or bind the batch with --input-shape")
    pictures = [_picture(p, spec, resize) for p in files]
    return [{spec.name: normalization.apply(np.stack(pictures[i:i + batch]), spec).astype(spec.dtype.numpy)}
            for i in range(0, len(pictures), batch)]
