"""dSprites with nothing to download: a renderer, the real file's loader, a fixed test split.

Shapes: N images, P pixels (64*64 = 4096), K factors (5), M models, B batch, V polygon
vertices, C sprite kinds (3 shapes * 6 scales * 40 orientations = 720), S scanlines
(32 posY values * 64 rows).

The renderer is the model fitted to the real frames (the dSprites spec, §4; "spec" below):
each shape is a polygon in the sprite frame (u right, v down, px at scale 1), scaled by s and
turned by theta about its reference point (X, Y) = (16 + 32 posX/31, 16 + 32 posY/31), and a
pixel is 1 iff its centre lies inside. It misses 24 of the 1.3 M pixels of the 320 real
frames in the dSprites README's GIF, at most 4 in any frame (scripts/check_renderer.py).
Everything downstream sees only `Dataset`, whichever source (renderer or real file) fills it.
"""
import argparse
import functools
import os
import time

import numpy

from .backend import BackendError, get_xp, to_numpy

FACTOR_NAMES = ("shape", "scale", "orientation", "posX", "posY")
FACTOR_SIZES = (3, 6, 40, 32, 32)            # shape: 0 square, 1 ellipse, 2 heart
N_IMAGES = 737280                            # = prod(FACTOR_SIZES)
IMAGE_SIZE = 64
PIXELS = IMAGE_SIZE * IMAGE_SIZE
# No public text says which way posY runs (spec §7). True: posY = 0 puts the sprite at the
# top (row centre 16), the spec's default; False: at the bottom (row centre 48). The one switch.
POSY_DOWN = True
# Shrink every crossing pair inward by this many px: it imitates the float32 GPU that drew the
# originals on near-tie pixels (spec §4: the square frames become exact).
EDGE_SHRINK = 0.001
TEST_SIZE = 10000
SPLIT_SEED = 20170602                        # fixed for good (the dSprites repo's last commit)
SAMPLER_STREAM = 3                           # a seed's stream for batches (0-2: weights, noise)
REAL_FILE = "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz"
_FIX = ("fetch the original from github.com/deepmind/dsprites-dataset, or give no path "
        "(no --data) to use the built-in renderer")


class DataError(ValueError):
    """A dataset file is not what the loader expects; the message names file, defect and fix."""


def classes_to_index(classes, sizes=FACTOR_SIZES):
    """Row-major image index (posY fastest, as in the real file) of factor classes (..., K)."""
    classes = _check_classes(classes, sizes)                               # (..., K)
    return numpy.ravel_multi_index(tuple(numpy.moveaxis(classes, -1, 0)), sizes)   # (...,)


def index_to_classes(indices, sizes=FACTOR_SIZES):
    """Factor classes (..., K) of row-major image indices (...)."""
    indices = _check_indices(indices, int(numpy.prod(sizes)))              # (...)
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


def _check_indices(indices, n):
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


# ---------------------------------------------------------------- one interface, two sources

class Dataset:
    """dSprites images and factors by row-major index, from the renderer or a loaded file."""

    factor_names = FACTOR_NAMES

    def __init__(self, source="renderer", imgs=None, factor_sizes=FACTOR_SIZES):
        self.source = source                       # "renderer" or the npz file's absolute path
        self.factor_sizes = tuple(factor_sizes)
        self.n_images = int(numpy.prod(self.factor_sizes))
        self._imgs = imgs                          # (N, 64, 64) uint8 of the file, None: render

    def factors(self, indices):
        """Factor classes, int64 of shape indices.shape + (K,)."""
        return index_to_classes(indices, self.factor_sizes)

    def images(self, indices, xp=numpy, dtype=numpy.uint8):
        """Flattened images on xp, values 0/1 in dtype, of shape indices.shape + (P,)."""
        indices = _check_indices(indices, self.n_images)                      # (...)
        flat = indices.reshape(-1)                                             # (N,)
        if self._imgs is None:
            x = render(index_to_classes(flat), xp)                             # (N, 64, 64)
        else:
            x = xp.asarray(self._imgs[flat])                                   # (N, 64, 64)
        return x.reshape(indices.shape + (PIXELS,)).astype(dtype, copy=False)  # (..., P)


def open_dataset(path=None, factor_sizes=FACTOR_SIZES):
    """The renderer (path None) or the real npz file at `path`, checked (DataError if not).

    `factor_sizes` is the grid the file must hold: dSprites' own by default; a smaller grid,
    same format, serves tests. The file's Python-2 pickled 'metadata' is never read."""
    if path is None:
        return Dataset()
    path = os.path.abspath(path)
    imgs, classes = _read_npz(path)
    _check_grid(path, imgs, classes, tuple(factor_sizes))
    return Dataset(path, imgs, factor_sizes)


def _read_npz(path):
    """imgs and latents_classes of the npz at path, loaded without unpickling anything."""
    if not os.path.isfile(path):
        raise DataError(f"{path}: no such file; {_FIX}")
    wanted = ("imgs", "latents_classes")
    try:
        with numpy.load(path, allow_pickle=False) as npz:
            found = sorted(npz.files)
            arrays = [npz[key] for key in wanted if key in found]
    except MemoryError:
        raise
    except Exception as err:  # numpy: "pickled data", zipfile: "bad CRC", ...: all unreadable
        raise DataError(f"{path}: not a readable .npz archive of plain arrays "
                        f"({type(err).__name__}: {err}); {_FIX}") from None
    if len(arrays) < len(wanted):
        raise DataError(f"{path}: should hold arrays {list(wanted)} like dSprites' {REAL_FILE}, "
                        f"found {found}; {_FIX}")
    return arrays


def _check_grid(path, imgs, classes, sizes):
    """Raise DataError on the first way imgs/latents_classes differ from the dSprites format."""
    n, K = int(numpy.prod(sizes)), len(sizes)

    def fail(what, expected, found):
        raise DataError(f"{path}: {what} should be {expected}, found {found}; {_FIX}")

    if imgs.dtype != numpy.uint8 or imgs.shape != (n, IMAGE_SIZE, IMAGE_SIZE):
        fail("imgs", f"uint8 {(n, IMAGE_SIZE, IMAGE_SIZE)}", f"{imgs.dtype} {imgs.shape}")
    if imgs.max(initial=0) > 1:
        fail("imgs values", "0 or 1", f"values up to {imgs.max()} (a 0/255 copy?)")
    if classes.dtype.kind not in "iu" or classes.shape != (n, K + 1):
        fail("latents_classes", f"integers of shape {(n, K + 1)} (colour + {K} factors)",
             f"{classes.dtype} {classes.shape}")
    expected = numpy.concatenate([numpy.zeros((n, 1), numpy.int64),
                                  index_to_classes(numpy.arange(n), sizes)], axis=1)   # (N, 1+K)
    wrong = numpy.nonzero((classes != expected).any(axis=1))[0]                       # (n_bad,)
    if len(wrong):
        i = int(wrong[0])
        fail(f"latents_classes row {i} (rows in row-major order, posY fastest)",
             expected[i].tolist(), classes[i].tolist())


# ---------------------------------------------------------------- split and batches

def test_split(n_images=N_IMAGES, size=TEST_SIZE, seed=SPLIT_SEED):
    """(test, train): sorted int64 indices, `size` drawn without replacement by `seed`, and
    the rest. The seed is fixed apart from any training seed, so all runs share one test set."""
    if not 0 < size < n_images:
        raise ValueError(f"test size must lie in 1..{n_images - 1}, got {size}")
    # RandomState, not Generator: its stream is frozen across NumPy versions, so the test
    # set of a run stays the test set after an upgrade.
    test = numpy.random.RandomState(seed).permutation(n_images)[:size]          # (size,)
    held_out = numpy.zeros(n_images, dtype=bool)                                 # (N,)
    held_out[test] = True
    return numpy.nonzero(held_out)[0], numpy.nonzero(~held_out)[0]


test_split.__test__ = False          # a `test_`-named function, but not a test: pytest, skip it


class BatchSampler:
    """Uniform batches with replacement from train_indices, one random stream per model.

    Model m's stream depends on seeds[m] alone, so a run over seeds (3, 4) draws exactly what
    runs over (3,) and (4,) draw; state() / set_state() carry it through a checkpoint."""

    def __init__(self, train_indices, seeds):
        self.train = numpy.asarray(train_indices, dtype=numpy.int64).reshape(-1)   # (n_train,)
        self.seeds = [int(s) for s in seeds]
        if not len(self.train) or not self.seeds:
            raise ValueError("BatchSampler needs some train indices and at least one seed")
        self._rngs = [numpy.random.default_rng((s, SAMPLER_STREAM)) for s in self.seeds]

    def next(self, batch_size):
        """Image indices (M, batch_size) int64."""
        pick = [rng.integers(0, len(self.train), batch_size) for rng in self._rngs]  # M x (B,)
        return self.train[numpy.stack(pick)]                                          # (M, B)

    def state(self):
        """A JSON-serializable snapshot (Python ints) from which set_state resumes."""
        return {"seeds": self.seeds, "n_train": len(self.train),
                "streams": [rng.bit_generator.state for rng in self._rngs]}

    def set_state(self, state):
        if state["seeds"] != self.seeds or state["n_train"] != len(self.train):
            raise ValueError(f"sampler state is for seeds {state['seeds']} over "
                             f"{state['n_train']} train images, not {self.seeds} over "
                             f"{len(self.train)}; resume with the run's own configuration")
        for rng, stream in zip(self._rngs, state["streams"]):
            rng.bit_generator.state = stream


# ---------------------------------------------------------------- python -m tinyvae.data

def show(dataset, out):
    """PNG grid: a row per (shape, scale), a column per 4th orientation, sprite centred."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    shape, scale, orient = numpy.meshgrid(range(3), range(6), range(0, 40, 4), indexing="ij")
    centre = numpy.full(shape.shape, 16)                                      # (3, 6, 10)
    classes = numpy.stack([shape, scale, orient, centre, centre], axis=-1)   # (3, 6, 10, K)
    x = dataset.images(classes_to_index(classes).reshape(18, 10))             # (18, 10, P)
    framed = ((0, 0), (0, 0), (1, 1), (1, 1))
    tiles = numpy.pad(x.reshape(18, 10, IMAGE_SIZE, IMAGE_SIZE), framed,
                      constant_values=1)                                      # (18, 10, 66, 66)
    side = IMAGE_SIZE + 2
    fig, ax = plt.subplots(figsize=(10, 18))
    ax.imshow(tiles.transpose(0, 2, 1, 3).reshape(18 * side, 10 * side), cmap="gray")
    ax.set_xticks(side * numpy.arange(10) + side / 2,
                  [f"{360 * k / 39:.0f}°" for k in range(0, 40, 4)])
    ax.set_yticks(side * numpy.arange(18) + side / 2,
                  [f"{n} {s:.1f}" for n in ("square", "ellipse", "heart")
                   for s in numpy.linspace(0.5, 1, 6)])
    ax.set_title(f"dSprites ({dataset.source}): shape and scale by row, orientation by column, "
                 "posX = posY = 16", fontsize=10)
    fig.savefig(out, dpi=80, bbox_inches="tight")
    plt.close(fig)
    print(f"wrote {out}")


def bench(dataset, xp, batch=64):
    """Print images/s for one batch and the time (and mean pixel) of the whole grid."""
    rng = numpy.random.default_rng(0)
    chunk = 4096 if xp is numpy else 65536
    # warm-up: tables built, GPU kernels compiled
    to_numpy(dataset.images(numpy.arange(chunk), xp).sum(dtype=xp.int64))
    times = []
    for _ in range(200):
        idx = rng.integers(0, dataset.n_images, batch)                         # (B,)
        start = time.perf_counter()
        to_numpy(dataset.images(idx, xp)[-1, -1])     # reading one pixel back waits for the device
        times.append(time.perf_counter() - start)
    t = numpy.median(times)
    print(f"batch of {batch}: {1e3 * t:.3f} ms, {batch / t:,.0f} images/s")
    on, start = 0, time.perf_counter()
    for first in range(0, dataset.n_images, chunk):
        idx = numpy.arange(first, min(first + chunk, dataset.n_images))        # (chunk,)
        on += int(to_numpy(dataset.images(idx, xp).sum(dtype=xp.int64)))
    t = time.perf_counter() - start
    print(f"all {dataset.n_images:,} images: {t:.2f} s; on-pixels {on:,}, "
          f"mean pixel {on / dataset.n_images / PIXELS:.6f}")


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m tinyvae.data", description=__doc__.split("\n")[0])
    p.add_argument("--show", action="store_true", help="write a PNG grid of samples")
    p.add_argument("--out", default="dsprites_samples.png", help="where --show writes")
    p.add_argument("--bench", action="store_true", help="time a batch and the whole grid")
    p.add_argument("--data", default=None, help=f"path of the real {REAL_FILE} (default: render)")
    p.add_argument("--gpu", action="store_true", help="--bench on CuPy")
    a = p.parse_args(argv)
    if not (a.show or a.bench):
        p.error("nothing to do: pass --show and/or --bench")
    try:
        dataset, xp = open_dataset(a.data), get_xp(a.gpu)
    except (DataError, BackendError) as err:
        p.exit(2, f"error: {err}\n")
    if a.show:
        show(dataset, a.out)
    if a.bench:
        bench(dataset, xp)


if __name__ == "__main__":
    main()
