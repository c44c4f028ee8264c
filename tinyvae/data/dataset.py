"""dSprites images from the renderer or the real file, a fixed test split, batch streams.

Shapes: N images, P pixels (64*64 = 4096), K factors (5), M models, B batch.

The renderer is tinyvae/data/render.py. Everything downstream sees only `Dataset`, whichever
source (renderer or real file) fills it.
"""
import argparse
import os
import time

import numpy

from ..backend import BackendError, get_xp, to_numpy
from ..vae import IMAGE_SIZE, PIXELS
from .render import (FACTOR_NAMES, FACTOR_SIZES, N_IMAGES, check_indices, classes_to_index,
                     index_to_classes, render)

TEST_SIZE = 10000
SPLIT_SEED = 20170602                        # fixed for good (the dSprites repo's last commit)
REAL_FILE = "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz"
# A seed's stream of batches, numpy.random.default_rng((seed, SAMPLER_STREAM)); its other
# streams: vae.INIT_STREAM (0), experiment/run/trainer.py's noise streams (1, 2).
SAMPLER_STREAM = 3
_FIX = ("fetch the original from github.com/deepmind/dsprites-dataset, or give no path "
        "(no --data) to use the built-in renderer")


class DataError(ValueError):
    """A dataset file is not what the loader expects. The message names the file, the defect
    and the fix of a command that takes --data; `defect` is the message without that fix, for
    a command whose fix is another (scripts/export_model.py scores on the run's own data)."""

    def __init__(self, defect):
        super().__init__(f"{defect}; {_FIX}")
        self.defect = defect


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
        indices = check_indices(indices, self.n_images)                      # (...)
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
    if os.path.isdir(path):
        raise DataError(f"{path} is a folder: give the dSprites .npz file ({REAL_FILE}) itself")
    if not os.path.isfile(path):
        raise DataError(f"{path}: no such file")
    wanted = ("imgs", "latents_classes")
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError as err:          # unreadable: bad input, not a failed write of the run
        raise DataError(f"{path}: cannot read it ({err.strerror})") from None
    if head != b"PK\x03\x04":        # NumPy would try it as a pickle, and advise unpickling it
        raise DataError(f"{path}: not a dSprites .npz (an .npz is a zip archive, and this file "
                        f"is not one: it begins {head!r})")
    try:
        with numpy.load(path, allow_pickle=False) as npz:
            found = sorted(npz.files)
            arrays = [npz[key] for key in wanted if key in found]
    except MemoryError:
        raise
    except Exception as err:  # numpy: "pickled data", zipfile: "bad CRC", ...: all unreadable
        raise DataError(f"{path}: not a readable .npz archive of plain arrays "
                        f"({type(err).__name__}: {err})") from None
    if len(arrays) < len(wanted):
        raise DataError(f"{path}: should hold arrays {list(wanted)} like dSprites' {REAL_FILE}, "
                        f"found {found}")
    return arrays


def _check_grid(path, imgs, classes, sizes):
    """Raise DataError on the first way imgs/latents_classes differ from the dSprites format."""
    n, K = int(numpy.prod(sizes)), len(sizes)

    def fail(what, expected, found):
        raise DataError(f"{path}: {what} should be {expected}, found {found}")

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


# -------------------------------------------------------- python -m tinyvae.data.dataset

def show(dataset, out):
    """PNG grid: a row per (shape, scale), a column per 4th orientation, sprite centred."""
    # Set up here, not imported from experiment/run/plotting.py: data/ is read before the
    # machinery, and imports nothing of it. Agg draws to files without a display.
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
    plt.close(fig)                  # pyplot keeps every figure it made until it is closed
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
    p = argparse.ArgumentParser(prog="python -m tinyvae.data.dataset",
                                description=__doc__.split("\n")[0])
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
