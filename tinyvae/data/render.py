"""The dSprites renderer: factor classes to images, on NumPy or CuPy, nothing to download.

Shapes: N images, K factors (5), V polygon vertices, C sprite kinds (3 shapes * 6 scales *
40 orientations = 720), S scanlines (32 posY values * 64 rows).

The renderer is the model fitted to the real frames (the dSprites spec, §4; "spec" below):
each shape is a polygon in the sprite frame (u right, v down, px at scale 1), scaled by s and
turned by theta about its reference point (X, Y) = (16 + 32 posX/31, 16 + 32 posY/31), and a
pixel is 1 iff its centre lies inside. It misses 24 of the 1.3 M pixels of the 320 real
frames in the dSprites README's GIF, at most 4 in any frame (scripts/check_renderer.py).
"""
import functools

import numpy

from ..backend import to_numpy
from ..vae import IMAGE_SIZE

FACTOR_NAMES = ("shape", "scale", "orientation", "posX", "posY")
FACTOR_SIZES = (3, 6, 40, 32, 32)            # shape: 0 square, 1 ellipse, 2 heart
N_IMAGES = 737280                            # = prod(FACTOR_SIZES)
# No public text says which way posY runs (spec §7). True: posY = 0 puts the sprite at the
# top (row centre 16), the spec's default; False: at the bottom (row centre 48). The one switch.
POSY_DOWN = True
# Shrink every crossing pair inward by this many px: it imitates the float32 GPU that drew the
# originals on near-tie pixels (spec §4: the square frames become exact).
EDGE_SHRINK = 0.001


def classes_to_index(classes, sizes=FACTOR_SIZES):
    """Row-major image index (posY fastest, as in the real file) of factor classes (..., K)."""
    classes = _check_classes(classes, sizes)                               # (..., K)
    return numpy.ravel_multi_index(tuple(numpy.moveaxis(classes, -1, 0)), sizes)   # (...,)


def index_to_classes(indices, sizes=FACTOR_SIZES):
    """Factor classes (..., K) of row-major image indices (...)."""
    indices = check_indices(indices, int(numpy.prod(sizes)))              # (...)
    return numpy.stack(numpy.unravel_index(indices, sizes), axis=-1)       # (..., K)


def _check_classes(classes, sizes):
    classes = numpy.asarray(to_numpy(classes))
    if classes.shape[-1:] != (len(sizes),) or classes.dtype.kind not in "iu":
        raise ValueError(f"factor classes must be integers of shape (..., {len(sizes)}), got "
                         f"{classes.dtype} {classes.shape}; order: {', '.join(FACTOR_NAMES)}")
    bad = (classes < 0) | (classes >= numpy.asarray(sizes))               # (..., K)
    if bad.any():
        k = int(numpy.nonzero(bad)[-1][0])
        raise ValueError(f"factor {FACTOR_NAMES[k]} has classes outside 0..{sizes[k] - 1}")
    return classes.astype(numpy.int64, copy=False)


def check_indices(indices, n):
    indices = numpy.asarray(to_numpy(indices))
    if indices.dtype.kind not in "iu":
        raise ValueError(f"image indices must be integers, got {indices.dtype}")
    if indices.size and (indices.min() < 0 or indices.max() >= n):
        raise ValueError(f"image indices must lie in 0..{n - 1}, got "
                         f"{indices.min()}..{indices.max()}")
    return indices.astype(numpy.int64, copy=False)


# ---------------------------------------------------------------- renderer

def _polygons():
    """The three shapes at scale 1 as closed polygons (V, 2) of (u, v) in px (spec §4)."""
    h = 9.6                                                         # half the square's 19.2 px
    square = numpy.array([[-h, -h], [h, -h], [h, h], [-h, h]])                     # (4, 2)
    phi = 2 * numpy.pi * numpy.arange(48) / 48                                     # (48,)
    ellipse = numpy.stack([12.8 * numpy.cos(phi), 7.22 * numpy.sin(phi)], axis=-1)  # (48, 2)
    # The classic heart curve (y up), made 19.2 px wide and tall and flipped to v down; the
    # 1.44 px offset is the spec's empirical fit of where the heart sits on its reference point.
    t = 2 * numpy.pi * numpy.arange(150) / 150                                     # (150,)
    heart_x = 16 * numpy.sin(t) ** 3                                               # (150,)
    heart_y = (13 * numpy.cos(t) - 5 * numpy.cos(2 * t)
               - 2 * numpy.cos(3 * t) - numpy.cos(4 * t))                          # (150,)
    heart = numpy.stack([0.6 * heart_x, -(19.2 / 29) * heart_y - 1.44], axis=-1)   # (150, 2)
    return square, ellipse, heart


_NO_CROSSING = float(IMAGE_SIZE)   # pads the crossing table: right of every column, whatever X


def _reference_point(pos, ascending=True):
    """Sprite centre in continuous pixel coordinates (pixel i spans [i, i+1)) of class pos."""
    centre = 16 + 32 * pos / 31                                # (...,) pos 0 -> 16, pos 31 -> 48
    return centre if ascending else IMAGE_SIZE - centre


@functools.lru_cache(maxsize=None)
def _crossings():
    """x of every polygon edge crossing, relative to X, for each sprite kind and scanline.

    Returns (C * 32, 64, 4) float64: (kind, posY), image row, crossings sorted along x and
    padded with _NO_CROSSING (rows crossed less than 4 times; no shape crosses one more often).
    A scanline depends on the row and the posY phase only, so posX costs nothing here.
    """
    scale = numpy.linspace(0.5, 1, 6)[:, None, None]                        # (6, 1, 1)
    theta = 2 * numpy.pi * numpy.arange(40) / 39                            # (40,) 0 and 39: 2 pi
    cos, sin = numpy.cos(theta)[:, None], numpy.sin(theta)[:, None]         # (40, 1)
    Y = _reference_point(numpy.arange(32), POSY_DOWN)                       # (32,)
    y = (numpy.arange(IMAGE_SIZE) + 0.5 - Y[:, None]).reshape(-1)            # (S,) centre row - Y
    table = numpy.full((3, 240, len(y), 4), _NO_CROSSING)                   # (3, 240, S, 4)
    for shape, poly in enumerate(_polygons()):
        u, v = poly[:, 0], poly[:, 1]                                       # (V,)
        x0 = (scale * (u * cos + v * sin)).reshape(240, -1)                 # (240, V) col - X
        y0 = (scale * (v * cos - u * sin)).reshape(240, -1)                 # (240, V) row - Y
        x1, y1 = numpy.roll(x0, -1, axis=1), numpy.roll(y0, -1, axis=1)     # (240, V) edge ends
        # only the scanlines that the shape can reach, at any scale and orientation
        near = numpy.nonzero(numpy.abs(y) <= numpy.abs(y0).max())[0]        # (S',)
        # Edge (x0,y0)->(x1,y1) crosses scanline y iff exactly one end lies at or above it:
        # half-open, so a vertex on a scanline counts once.
        above = y0[:, None, :] <= y[near, None]                             # (240, S', V)
        kind, line, edge = numpy.nonzero(above != numpy.roll(above, -1, axis=2))   # (n,) each
        ya, yb, xa, xb = (a[kind, edge] for a in (y0, y1, x0, x1))          # (n,) each
        x = xa + (y[near][line] - ya) * (xb - xa) / (yb - ya)               # (n,) crossing x
        flat = kind * len(near) + line                                      # (n,) ascending
        count = numpy.bincount(flat, minlength=240 * len(near))             # (240*S',)
        assert count.max() <= 4, "a shape crosses a scanline more than 4 times"
        # crossings come grouped by line: the slot of one is its rank within its group
        first = numpy.cumsum(count) - count                                 # (240*S',)
        slot = numpy.arange(len(flat)) - first[flat]                        # (n,) 0..3
        table[shape, kind, near[line], slot] = x
    table = numpy.sort(table, axis=-1).reshape(720 * 32, IMAGE_SIZE, 4)      # (C * 32, 64, 4)
    table[..., 0::2] += EDGE_SHRINK                                         # entering crossings
    table[..., 1::2] -= EDGE_SHRINK                                         # leaving crossings
    return table


@functools.lru_cache(maxsize=None)
def _tables_on(xp):
    """The crossing table, and low(k): the 64-bit word with bits 0..k-1 set (all from k = 64)."""
    low = [(1 << min(k, IMAGE_SIZE)) - 1 for k in range(2 * IMAGE_SIZE)]
    return xp.asarray(_crossings()), xp.asarray(low, dtype=xp.uint64)    # (C * 32, 64, 4), (128,)


def render(classes, xp=numpy):
    """Images (N, 64, 64) uint8 in {0, 1} of factor classes (N, K), drawn on backend xp."""
    classes = _check_classes(classes, FACTOR_SIZES)                          # (N, K)
    if classes.ndim != 2:
        raise ValueError(f"render takes factor classes of shape (N, 5), got {classes.shape}")
    # Index arithmetic on the host (N numbers), so a GPU launches only the pixel work.
    shape, scale, orient, pos_x, pos_y = classes.T                           # (N,) each
    line = ((shape * 6 + scale) * 40 + orient) * 32 + pos_y                  # (N,) table row
    shift = _reference_point(pos_x) - 0.5                                    # (N,) X - 0.5
    crossings, low = _tables_on(xp)
    crossing = crossings[xp.asarray(line)]                                   # (N, 64, 4)
    # Column c (centre c + 0.5) lies right of crossing x iff c >= ceil(x + X - 0.5), in 2..62
    # for every real crossing and 64 or more for the padding.
    bound = xp.ceil(crossing + xp.asarray(shift)[:, None, None]).astype(xp.int64)  # (N, 64, 4)
    # A row is one 64-bit word, bit c = column c, and columns [a, b) are low(b) ^ low(a); so the
    # XOR over a row's four bounds fills crossings 1-2 and 3-4 (even-odd rule), and pads cancel.
    edge = low[bound]                                                        # (N, 64, 4) uint64
    row = edge[..., 0] ^ edge[..., 1] ^ edge[..., 2] ^ edge[..., 3]          # (N, 64)
    # Bytes of a word run low bits first on little-endian hosts (x86, ARM, every CUDA GPU).
    pixels = xp.unpackbits(row.view(xp.uint8), bitorder="little")          # (N * 64 * 64,)
    return pixels.reshape(-1, IMAGE_SIZE, IMAGE_SIZE)                       # (N, 64, 64)
