"""Preprocessing: person boxes to network crops, and back (top-down); whole frames
resized and padded for bottom-up models (resize_pad_for_bottom_up, at the end).

Follows the official HRNet code (deep-high-resolution-net.pytorch,
``lib/dataset/coco.py`` ``_xywh2cs`` and ``lib/utils/transforms.py``) so that
crops and decoded keypoints match what the released checkpoints were evaluated
with.

Shapes: N people, K keypoints, H, W heatmap height and width. Crops are
(N, h_in, w_in, 3) where (w_in, h_in) is the network input size. Boxes are
xywh in image pixels; a box's center and scale follow HRNet's convention:
scale = box size / pixel_std (200), padded by 1.25.
"""

from __future__ import annotations

from typing import Any, Literal

import cv2
import numpy as np

from edgepose.errors import InputError

PIXEL_STD = 200.0
PADDING = 1.25


def _as_pairs(name: str, value: object, count: int | None = None) -> np.ndarray:
    """(N, 2) float64 view of centers/scales, InputError on a wrong shape."""
    array = np.asarray(value, dtype=np.float64)
    if array.ndim != 2 or array.shape[1] != 2 or (count is not None and array.shape[0] != count):
        expected = f"({count}, 2)" if count is not None else "(N, 2)"
        raise InputError(f"{name} must have shape {expected}, got {array.shape}")
    return array


def _size(name: str, size: object) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in size)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        raise InputError(f"{name} must be (width, height), got {size!r}") from None
    if width <= 0 or height <= 0:
        raise InputError(f"{name} must be positive (width, height), got {size!r}")
    return width, height


def _box_centers(boxes: np.ndarray, **positive: float
                 ) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """Box centers (N, 2) float32 and (widths, heights) float64 of (N, 4) xywh boxes, after
    checking the boxes' shape and that every named number is positive and finite."""
    boxes = np.asarray(boxes, dtype=np.float64)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise InputError(f"boxes must have shape (N, 4) as xywh, got {boxes.shape}")
    for name, value in positive.items():
        if not (np.isfinite(value) and value > 0):
            raise InputError(f"{name} must be a positive finite number, got {value!r}")
    x, y, w, h = boxes.T
    return np.stack([x + w * 0.5, y + h * 0.5], axis=1).astype(np.float32), (w, h)


def box_to_center_scale(
    boxes: np.ndarray,
    aspect_ratio: float,
    padding: float = PADDING,
    pixel_std: float = PIXEL_STD,
) -> tuple[np.ndarray, np.ndarray]:
    """HRNet's ``_xywh2cs`` for N boxes.

    boxes: (N, 4) xywh. aspect_ratio: network input width / height.
    Returns centers (N, 2) and scales (N, 2), float32. The box grows (never
    shrinks) to the input aspect ratio before it is divided by pixel_std and
    padded, so the crop keeps the person's proportions. A box whose float32
    center x is exactly −1 is not padded, as in the official code.
    """
    centers, (w, h) = _box_centers(boxes, aspect_ratio=aspect_ratio, padding=padding,
                                   pixel_std=pixel_std)
    wide = w > aspect_ratio * h
    tall = w < aspect_ratio * h
    grown_w = np.where(tall, h * aspect_ratio, w)
    grown_h = np.where(wide, w / aspect_ratio, h)
    # The official code rounds w/200 to float32 before the float32 product with
    # the padding; doing the same keeps scales bit-identical to its output.
    scales = np.stack([grown_w / pixel_std, grown_h / pixel_std], axis=1).astype(np.float32)
    # _xywh2cs pads only `if center[0] != -1`, a legacy sentinel tested on its float32
    # center: kept so that crops of such boxes match the official outputs.
    padded = centers[:, 0] != np.float32(-1)
    scales *= np.where(padded, np.float32(padding), np.float32(1))[:, None]
    return centers, scales


def box_height_to_center_scale(
    boxes: np.ndarray,
    aspect_ratio: float,
    padding: float,
    pixel_std: float = PIXEL_STD,
) -> tuple[np.ndarray, np.ndarray]:
    """CPM's crop rule: the crop is `padding` × the box height tall, whatever its width.

    CMU's applyModel.m scales the image so that 1.2 × the person rectangle's height
    fills the 368-pixel box around the rectangle's center; a wide box is cut at the
    crop's sides. Returns centers (N, 2) and scales (N, 2) float32, in the same
    units as box_to_center_scale, for an input of width / height `aspect_ratio`.
    """
    centers, (_, h) = _box_centers(boxes, aspect_ratio=aspect_ratio, padding=padding,
                                   pixel_std=pixel_std)
    tall = h * padding / pixel_std
    scales = np.stack([tall * aspect_ratio, tall], axis=1).astype(np.float32)
    return centers, scales


BOX_RULES = ("fit", "height")


def crop_centers_scales(boxes: np.ndarray, spec: Any,
                        padding: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Crop centers and scales (N, 2) for boxes (N, 4) xywh, by a card input's box rule.

    spec: the card's InputSpec (its size, and its crop rule: spec.crop, checked when the
    card was read). padding overrides the card's.
    """
    padding = spec.crop.padding if padding is None else padding
    aspect = spec.width / spec.height
    if spec.crop.rule == "height":
        return box_height_to_center_scale(boxes, aspect, padding)
    return box_to_center_scale(boxes, aspect, padding=padding)


BOXES_EXPECTED = "an (N, 4) float array of xywh boxes in image pixels"
SCORES_EXPECTED = "an (N,) float array of box scores >= 0, one per box"


def _numbers(value: object, name: str, expected: str) -> np.ndarray:
    """`value` as an array of real numbers, or InputError saying what `name` must be."""
    if isinstance(value, (str, bytes)):
        raise InputError(f"{name} must be {expected}, got the string {value[:40]!r}; parse it "
                         f"into numbers first")
    try:
        array = np.asarray(value)
    except (TypeError, ValueError):
        # Ragged nested lists: numpy cannot make one array of them.
        raise InputError(f"{name} must be {expected}, got a {type(value).__name__} of rows of "
                         f"different lengths") from None
    if array.dtype.kind not in "iuf":
        raise InputError(f"{name} must be {expected}, got an array of dtype {array.dtype}; "
                         f"pass integers or floats")
    return array


# Largest frame (height × width) every pipeline accepts: 2**25 pixels, room for 8K UHD
# (7680x4320). Chosen so that a frame at the limit keeps OpenPose (368x656 input, ONNX
# Runtime on the CPU) within the 1.5 GB peak-memory goal of issue 21: besides the model,
# PafPipeline then holds the frame (3 bytes per pixel) and one map channel at image
# size (4 bytes per pixel), its smoothing working a band of rows at a time.
MAX_FRAME_PIXELS = 2 ** 25


def check_frame(image: object) -> None:
    """InputError unless `image` is a BGR uint8 (h, w, 3) frame of at most MAX_FRAME_PIXELS:
    the check every pipeline and the detector make before any work."""
    if not (isinstance(image, np.ndarray) and image.ndim == 3 and image.shape[2] == 3
            and image.dtype == np.uint8):
        shape = getattr(image, "shape", None)
        raise InputError(f"expected a BGR uint8 image of shape (h, w, 3), got {shape}")
    height, width = image.shape[:2]
    if height * width > MAX_FRAME_PIXELS:
        raise InputError(
            f"frame of {width}x{height} = {height * width} pixels is above the limit of "
            f"{MAX_FRAME_PIXELS} pixels (MAX_FRAME_PIXELS, which bounds the memory); "
            f"downscale it to at most {MAX_FRAME_PIXELS} pixels first"
        )


#: Largest box width or height accepted, in pixels: far past any camera frame, and far
#: short of values whose crops lose all precision in float32.
MAX_BOX_PIXELS = 1e6
#: Smallest box width and height accepted, in pixels: below it a crop holds nothing.
MIN_BOX_PIXELS = 1e-2


def validate_boxes(boxes: np.ndarray, image_width: int, image_height: int) -> np.ndarray:
    """Boxes (N, 4) xywh as float32, or InputError naming the first bad box.

    boxes must be numbers (integers or floats, not strings) of shape (N, 4); an
    empty 1-D array is no box. A box is bad when it has a non-finite value, zero
    or negative area, a width or height outside MIN_BOX_PIXELS..MAX_BOX_PIXELS, or
    lies entirely outside the image; one that is only partly
    outside is kept, since the crop pads with the border value.
    """
    array = _numbers(boxes, "boxes", BOXES_EXPECTED).astype(np.float32)
    if array.ndim == 1 and array.size == 0:
        array = array.reshape(0, 4)
    if array.ndim != 2 or array.shape[1] != 4:
        raise InputError(f"boxes must have shape (N, 4) as xywh, got {array.shape}; pass "
                         f"{BOXES_EXPECTED} (scores go in a separate (N,) array)")
    if image_width <= 0 or image_height <= 0:
        raise InputError(
            f"image size must be positive, got width={image_width}, height={image_height}"
        )
    x, y, w, h = array.T.astype(np.float64)
    with np.errstate(invalid="ignore"):
        checks = (
            (~np.isfinite(array).all(axis=1), "has a non-finite value"),
            ((w <= 0) | (h <= 0), "has zero or negative area (w and h must be > 0)"),
            ((w < MIN_BOX_PIXELS) | (h < MIN_BOX_PIXELS) | (w > MAX_BOX_PIXELS)
             | (h > MAX_BOX_PIXELS),
             f"has a width or height outside {MIN_BOX_PIXELS:g}..{MAX_BOX_PIXELS:g} pixels"),
            (
                (x + w <= 0) | (y + h <= 0) | (x >= image_width) | (y >= image_height),
                f"lies entirely outside the {image_width}x{image_height} image",
            ),
        )
    for bad, why in checks:
        if bad.any():
            index = int(np.argmax(bad))
            xb, yb, wb, hb = (float(v) for v in array[index])
            raise InputError(
                f"box {index} (x={xb:g}, y={yb:g}, w={wb:g}, h={hb:g}) {why}; "
                f"pass xywh boxes in image pixels or drop this one"
            )
    return array


def validate_box_scores(scores: object, count: int) -> np.ndarray:
    """Box scores (N,) as float32 for `count` boxes, or InputError: finite numbers >= 0."""
    array = _numbers(scores, "box_scores", SCORES_EXPECTED)
    if array.shape != (count,):
        raise InputError(f"box_scores must have shape ({count},), one score per box, got "
                         f"{array.shape}; pass {SCORES_EXPECTED}")
    array = array.astype(np.float32)
    with np.errstate(invalid="ignore"):
        bad = ~(np.isfinite(array) & (array >= 0))
    if bad.any():
        index = int(np.argmax(bad))
        raise InputError(f"box score {index} is {float(array[index]):g}; expected a finite "
                         f"score >= 0 (a detector's confidence), or drop that box")
    return array


def affine_matrices(
    centers: np.ndarray,
    scales: np.ndarray,
    output_size: tuple[int, int],
    pixel_std: float = PIXEL_STD,
    inverse: bool = False,
) -> np.ndarray:
    """HRNet's ``get_affine_transform`` (rotation 0, shift 0) for N people.

    centers, scales: (N, 2). output_size: (width, height) of the crop or of the
    heatmap. Returns (N, 2, 3) float64 matrices, image -> output (or output ->
    image with ``inverse``).

    The official function builds its three point pairs from ``scale[0]`` alone
    (a square of side scale[0]·pixel_std around the center) and from the output
    *width* alone (destination direction (0, -width/2)), so the map is an
    isotropic scale by width / (scale[0]·pixel_std) in both axes and scale[1]
    is ignored. box_to_center_scale makes scale[1]/scale[0] equal the input
    height/width, which is what keeps this from distorting. With no rotation the
    map is a scale plus a translation, written here in closed form; it equals
    cv2.getAffineTransform on the official points up to the float32 rounding
    the official code applies to those points.
    """
    centers = _as_pairs("centers", centers)
    scales = _as_pairs("scales", scales, centers.shape[0])
    width, height = _size("output_size", output_size)
    src_w = scales[:, 0] * pixel_std
    if not np.all(np.isfinite(src_w) & (src_w > 0)) or not np.all(np.isfinite(centers)):
        raise InputError("centers must be finite and scales[:, 0] positive and finite")
    matrices = np.zeros((centers.shape[0], 2, 3), dtype=np.float64)
    if inverse:
        factor = src_w / width
        matrices[:, 0, 0] = factor
        matrices[:, 1, 1] = factor
        matrices[:, 0, 2] = centers[:, 0] - factor * (width * 0.5)
        matrices[:, 1, 2] = centers[:, 1] - factor * (height * 0.5)
    else:
        factor = width / src_w
        matrices[:, 0, 0] = factor
        matrices[:, 1, 1] = factor
        matrices[:, 0, 2] = width * 0.5 - factor * centers[:, 0]
        matrices[:, 1, 2] = height * 0.5 - factor * centers[:, 1]
    return matrices


def crop_batch(
    image: np.ndarray,
    matrices: np.ndarray,
    output_size: tuple[int, int],
    out: np.ndarray | None = None,
    border_value: float = 0,
) -> np.ndarray:
    """Warp one image into N crops, as HRNet does (INTER_LINEAR, constant border).

    image: (h, w, 3) uint8. matrices: (N, 2, 3) image -> crop, from
    affine_matrices. output_size: (width, height) = (w_in, h_in).
    Returns (N, h_in, w_in, 3) uint8: ``out`` itself when given, so a caller
    that keeps one buffer for its largest batch allocates nothing here.
    """
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 \
            or image.shape[2] != 3:
        shape = getattr(image, "shape", None)
        dtype = getattr(image, "dtype", type(image).__name__)
        raise InputError(f"image must be (h, w, 3) uint8, got shape {shape} dtype {dtype}")
    matrices = np.asarray(matrices, dtype=np.float64)
    if matrices.ndim != 3 or matrices.shape[1:] != (2, 3):
        raise InputError(f"matrices must have shape (N, 2, 3), got {matrices.shape}")
    width, height = _size("output_size", output_size)
    expected = (matrices.shape[0], height, width, 3)
    if out is None:
        out = np.empty(expected, dtype=np.uint8)
    elif out.shape != expected or out.dtype != np.uint8 or not out.flags.c_contiguous:
        raise InputError(
            f"out must be a C-contiguous uint8 array of shape {expected}, "
            f"got {out.dtype} {out.shape}; allocate it with np.empty({expected}, np.uint8)"
        )
    border = (float(border_value),) * 3
    for n in range(matrices.shape[0]):
        # warpAffine writes into a dst of the right size and type in place.
        cv2.warpAffine(
            image, matrices[n], (width, height), dst=out[n], flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT, borderValue=border,
        )
    return out


def normalize_to_tensor(
    crops: np.ndarray,
    mean: np.ndarray,
    std: np.ndarray,
    color: Literal["RGB", "BGR"] = "RGB",
    layout: Literal["NCHW", "NHWC"] = "NCHW",
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Network input (pixel − mean) / std as float32.

    crops: (N, h_in, w_in, 3) uint8 in BGR, as cv2 reads images. mean, std: (3,)
    in 0–255 units and in the model's color order ``color``. Returns
    (N, 3, h_in, w_in) for NCHW or (N, h_in, w_in, 3) for NHWC; ``out`` itself
    when given.
    """
    if not isinstance(crops, np.ndarray) or crops.dtype != np.uint8 or crops.ndim != 4 \
            or crops.shape[3] != 3:
        shape = getattr(crops, "shape", None)
        raise InputError(f"crops must be (N, h, w, 3) uint8, got shape {shape}")
    if color not in ("RGB", "BGR"):
        raise InputError(f"color must be 'RGB' or 'BGR', got {color!r}")
    if layout not in ("NCHW", "NHWC"):
        raise InputError(f"layout must be 'NCHW' or 'NHWC', got {layout!r}")
    mean32 = np.asarray(mean, dtype=np.float32)
    std32 = np.asarray(std, dtype=np.float32)
    if mean32.shape != (3,) or std32.shape != (3,):
        raise InputError(f"mean and std must have shape (3,), got {mean32.shape}, {std32.shape}")
    if not (np.all(np.isfinite(mean32)) and np.all(np.isfinite(std32)) and np.all(std32 != 0)):
        raise InputError(f"mean must be finite and std finite and non-zero, got {mean}, {std}")
    n, h, w, _ = crops.shape
    expected = (n, 3, h, w) if layout == "NCHW" else (n, h, w, 3)
    if out is None:
        out = np.empty(expected, dtype=np.float32)
    elif out.shape != expected or out.dtype != np.float32:
        raise InputError(f"out must be float32 of shape {expected}, got {out.dtype} {out.shape}")
    # Source channel of each model channel: crops are BGR.
    source = (2, 1, 0) if color == "RGB" else (0, 1, 2)
    if layout == "NCHW":
        # One pass per channel writes each plane contiguously.
        for c, s in enumerate(source):
            np.subtract(crops[..., s], mean32[c], out=out[:, c])
            np.divide(out[:, c], std32[c], out=out[:, c])
    else:
        # A reversed view, not a fancy-indexed copy, keeps this allocation-free.
        np.subtract(crops[..., ::-1] if color == "RGB" else crops, mean32, out=out)
        np.divide(out, std32, out=out)
    return out


def heatmap_to_image(
    coords: np.ndarray,
    centers: np.ndarray,
    scales: np.ndarray,
    heatmap_size: tuple[int, int],
    pixel_std: float = PIXEL_STD,
) -> np.ndarray:
    """HRNet's ``transform_preds``: heatmap pixels (N, K, 2) -> image pixels (N, K, 2).

    heatmap_size: (W, H). Returns float32.

    Official behaviour, reproduced exactly: the inverse of get_affine_transform
    on the heatmap size uses scale[0]·pixel_std / W for *both* axes, i.e.
    x_img = cx + (x − W/2)·sw·pixel_std/W and y_img = cy + (y − H/2)·sw·pixel_std/W.
    This equals the per-axis form sh·pixel_std/H only when sh/sw = H/W, which
    box_to_center_scale guarantees when the heatmap has the input's aspect ratio.
    """
    coords = np.asarray(coords, dtype=np.float64)
    if coords.ndim != 3 or coords.shape[2] != 2:
        raise InputError(f"coords must have shape (N, K, 2), got {coords.shape}")
    inverse = affine_matrices(centers, scales, heatmap_size, pixel_std, inverse=True)
    if inverse.shape[0] != coords.shape[0]:
        raise InputError(
            f"coords hold {coords.shape[0]} people but centers/scales hold {inverse.shape[0]}"
        )
    # With rotation 0 the matrix is a per-person scale, the same on both axes, and an offset.
    result = coords * inverse[:, None, None, 0, 0] + inverse[:, None, :, 2]
    return result.astype(np.float32)


# ---------------------------------------------------------------------------
# Bottom-up (OpenPose) preprocessing: the whole frame, resized and padded.
# ---------------------------------------------------------------------------

def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise InputError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def resize_pad_for_bottom_up(
    image: np.ndarray,
    target_height: int,
    stride: int,
    pad_value: float,
    *,
    target_width: int | None = None,
) -> tuple[np.ndarray, float, tuple[int, int]]:
    """Resize a frame keeping its aspect (INTER_CUBIC) and pad it bottom/right with pad_value.

    image: (h, w, 3) uint8. Without target_width this is the OpenPose Python
    port's step (``cv2.resize(fx=fy=scale)`` then ``padRightDownCorner``): scale
    = target_height / h, then pad to the next multiple of `stride`. With
    target_width, the frame is fitted into exactly (target_height, target_width):
    scale = min(target_height / h, target_width / w) and the rest is padded. The
    bottom-up pipeline uses the latter because the ONNX graphs edgepose exports
    have a fixed spatial size (only the batch axis is dynamic), so every frame must
    become the card's input size; a frame of the card's aspect is only resized.

    The resize uses fx = fy = scale as the port does, so a pixel centre maps as
    x_in = (x + 0.5)·scale − 0.5 (image_to_bottom_up / bottom_up_to_image); the
    padding lies bottom/right and shifts nothing. Returns the padded (H, W, 3)
    uint8 image, the scale, and the padding (bottom, right) in pixels; the resized
    frame occupies [:H − bottom, :W − right]. pad_value is a pixel value (0–255,
    rounded to uint8). InputError for an image smaller than
    the stride, or one that would shrink to nothing.
    """
    if not (isinstance(image, np.ndarray) and image.ndim == 3 and image.shape[2] == 3
            and image.dtype == np.uint8):
        shape = getattr(image, "shape", None)
        dtype = getattr(image, "dtype", type(image).__name__)
        raise InputError(f"image must be (h, w, 3) uint8 BGR, got shape {shape} dtype {dtype}")
    target_height = _positive_int("target_height", target_height)
    stride = _positive_int("stride", stride)
    if not (isinstance(pad_value, (int, float, np.number)) and 0 <= pad_value <= 255):
        raise InputError(f"pad_value must be a pixel value in [0, 255], got {pad_value!r}")
    height, width = image.shape[:2]
    if height < stride or width < stride:
        raise InputError(
            f"image of {height}x{width} pixels is smaller than the model's stride {stride}; "
            f"pass an image at least {stride}x{stride}"
        )
    if target_width is None:
        scale = target_height / height
    else:
        target_width = _positive_int("target_width", target_width)
        scale = min(target_height / height, target_width / width)
    # cv2 sizes the output as round(w·fx), round(h·fy); it must not vanish.
    if round(width * scale) < 1 or round(height * scale) < 1:
        raise InputError(
            f"image of {height}x{width} pixels shrinks to nothing at scale {scale:.4g} "
            f"(input {target_height}x{target_width}); crop it to a less extreme aspect ratio"
        )
    resized = cv2.resize(image, (0, 0), fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    new_h, new_w = resized.shape[:2]
    if target_width is None:
        out_h = -(-new_h // stride) * stride
        out_w = -(-new_w // stride) * stride
    else:
        out_h, out_w = target_height, target_width
    # cv2 rounds the output size: a frame fitted to the full height or width can come
    # out one pixel past it only through rounding at .5; keep it inside the input.
    resized = resized[:out_h, :out_w]
    new_h, new_w = resized.shape[:2]
    padded = np.empty((out_h, out_w, 3), dtype=np.uint8)
    padded[:new_h, :new_w] = resized
    fill = np.uint8(round(float(pad_value)))  # the nearest uint8 value, as the port's uint8 padding
    padded[new_h:, :] = fill
    padded[:new_h, new_w:] = fill
    return padded, float(scale), (out_h - new_h, out_w - new_w)


def image_to_bottom_up(coords: np.ndarray, scale: float) -> np.ndarray:
    """Image pixels → pixels of resize_pad_for_bottom_up's output: (x + 0.5)·scale − 0.5."""
    coords = np.asarray(coords, dtype=np.float64)
    return ((coords + 0.5) * scale - 0.5).astype(np.float32)


def bottom_up_to_image(coords: np.ndarray, scale: float) -> np.ndarray:
    """Inverse of image_to_bottom_up: (x + 0.5) / scale − 0.5, any shape (..., 2)."""
    if not (np.isfinite(scale) and scale > 0):
        raise InputError(f"scale must be a positive finite number, got {scale!r}")
    coords = np.asarray(coords, dtype=np.float64)
    return ((coords + 0.5) / scale - 0.5).astype(np.float32)
