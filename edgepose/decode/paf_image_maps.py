"""Network maps seen at image size, one channel at a time, as the OpenPose port resizes them.

The port takes the network's maps through a ×stride cubic resize, a crop to the
unpadded input and a cubic resize to the image, all channels at once. ImageMaps
gives each channel of that result on demand, so that a decoder's memory follows
the network rather than the frame; resize_maps_to_image gives them all. Also the
validation every PAF decoder input goes through (check_maps).
"""

from __future__ import annotations

import cv2
import numpy as np

from edgepose.decode.maps import all_finite, check_finite
from edgepose.decode.paf_peaks import FLOAT32_SAFE
from edgepose.decode.paf_smoothing import NetworkSmoothing, resize_gain, smooth_network_map
from edgepose.errors import DecodeError


def resize_maps_to_image(maps: np.ndarray, stride: int, valid_size: tuple[int, int],
                         image_size: tuple[int, int]) -> np.ndarray:
    """Network maps to image pixels, as the port: ×stride cubic, crop the padding, cubic resize.

    maps: (C, Hm, Wm). valid_size: (width, height) of the resized image inside the
    padded network input. image_size: (width, height) of the original image.
    Returns (C, height, width) float32: all channels at once, C·height·width·4
    bytes; ImageMaps gives the same values one channel at a time.
    """
    lazy = ImageMaps(maps, stride, valid_size, image_size, check=False)
    out = np.empty(lazy.shape, dtype=np.float32)
    for c in range(len(lazy)):
        lazy.resize(c, out=out[c])
    return out


class ImageMaps:
    """Network maps (C, Hm, Wm) seen at image size, one channel per access.

    ``maps[c]`` is channel c of resize_maps_to_image(maps, ...), bit for bit,
    (height, width) float32, computed on each access and not kept: memory holds one
    channel at image size instead of C. ``maps[a:b]`` is an ImageMaps of those
    channels. shape: (C, height, width). With check, the network maps are
    validated as the decoder validates maps (check_maps) and each resized channel
    is checked to be finite (a cubic resize can overflow float32). One thread at a
    time: the ×stride upsampling goes through a scratch buffer the object keeps.
    """

    def __init__(self, maps: np.ndarray, stride: int, valid_size: tuple[int, int],
                 image_size: tuple[int, int], name: str = "maps", check: bool = True) -> None:
        maps = check_maps(maps, name) if check else np.asarray(maps)
        if maps.ndim != 3:
            raise DecodeError(f"{name} must be 3-D (C, H, W), got shape {maps.shape}")
        channels, height, width = maps.shape
        valid_w, valid_h = valid_size
        if height * stride < valid_h or width * stride < valid_w:
            raise DecodeError(
                f"maps of {height}x{width} at stride {stride} cover {height * stride}x"
                f"{width * stride} input pixels, less than the {valid_h}x{valid_w} image "
                f"inside the input; the model's output size does not match its card"
            )
        # Copied: runners may hand out views of buffers reused on the next call, and
        # channels are resized later, while decoding.
        self.maps = np.array(maps, dtype=np.float32)
        self.stride, self.valid_size, self.image_size = stride, valid_size, image_size
        self.name, self.check = name, check
        self.shape = (channels, image_size[1], image_size[0])
        # A cubic resize of finite values can only go non-finite by overflowing: the
        # channels whose largest value cannot overflow skip the check of each resize.
        gain = resize_gain(height, stride, valid_h, image_size[1]) * resize_gain(
            width, stride, valid_w, image_size[0])
        largest = (np.abs(self.maps).max(axis=(1, 2)).astype(np.float64) if self.maps.size
                   else np.zeros(channels))
        self._unchecked = largest * gain < FLOAT32_SAFE
        # The upsampled channel is a scratch buffer kept across calls: a fresh one per
        # channel makes glibc hand the pages back and fault them in again, which costs
        # four times the resize itself (1 MB at 368x656).
        self._upsampled: np.ndarray | None = None

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index: int | slice) -> "np.ndarray | ImageMaps":
        if isinstance(index, slice):
            return ImageMaps(self.maps[index], self.stride, self.valid_size, self.image_size,
                             self.name, check=self.check)
        return self.resize(index)

    def smoothed(self, channel: int, sigma: float, truncate: float) -> NetworkSmoothing | None:
        """Channel `channel` at image size smoothed as the port smooths it, within an
        error bound, from the network map: paf_smoothing.smooth_network_map."""
        return smooth_network_map(self.maps[channel], self.stride, self.valid_size,
                                  self.image_size, sigma, truncate)

    def resize(self, channel: int, out: np.ndarray | None = None) -> np.ndarray:
        """Channel `channel` at image size, into `out` when given."""
        _, height, width = self.maps.shape
        valid_w, valid_h = self.valid_size
        up = self._upsampled = cv2.resize(self.maps[channel],
                                          (width * self.stride, height * self.stride),
                                          dst=self._upsampled, interpolation=cv2.INTER_CUBIC)
        out = cv2.resize(up[:valid_h, :valid_w], self.image_size, dst=out,
                         interpolation=cv2.INTER_CUBIC)
        if self.check and not self._unchecked[channel] and not all_finite(out):
            y, x = (int(v) for v in np.argwhere(~np.isfinite(out))[0])
            raise DecodeError(
                f"{self.name} resized to the image hold NaN/inf values (first at channel "
                f"{channel}, y={y}, x={x}); expected finite network outputs — check the "
                f"engine's precision and the input normalisation"
            )
        return out


def check_maps(maps: object, name: str, finite: bool = True) -> np.ndarray | ImageMaps:
    """maps as a (C, H, W) float array, DecodeError otherwise; with `finite`, also
    DecodeError naming the first NaN/inf."""
    if isinstance(maps, ImageMaps):
        return maps  # checked when made, and each channel when resized
    array = np.asarray(maps)
    if array.ndim != 3:
        raise DecodeError(f"{name} must be 3-D (C, H, W), got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.floating):
        raise DecodeError(f"{name} must be a float array, got dtype {array.dtype}")
    if array.shape[1] < 1 or array.shape[2] < 1:
        raise DecodeError(f"{name} must have H, W >= 1, got shape {array.shape}")
    if finite:
        check_finite(array, name, ("channel",))
    return array
