"""dSprites data: the renderer against numbers measured on real frames, indexing, the loader's
checks, the split and the batch sampler.

The measured vectors are those of the dSprites spec §5, from the 320 real frames of the
deepmind/dsprites-dataset README GIF; they are written out here so the tests need no file.
"""
import json

import numpy
import pytest

from tinyvae.data import dataset as data
from tinyvae.data import render as renderer
from tinyvae.data.render import POSY_DOWN

SQUARE, ELLIPSE, HEART = 0, 1, 2


def classes(shape, scale=5, orientation=0, pos_x=0, pos_y=0):
    """Factor classes (N, K) with one or more of the arguments swept (arrays broadcast)."""
    columns = numpy.broadcast_arrays(shape, scale, orientation, pos_x, pos_y)
    return numpy.stack([numpy.ravel(c) for c in columns], axis=-1)         # (N, K)


def on_pixels(c):
    return renderer.render(c).reshape(len(c), -1).sum(axis=1).astype(int)      # (N,)


def row_spans(image):
    """{row: [(first col, last col), ...]} of the runs of 1s in a (64, 64) image."""
    spans = {}
    for r, row in enumerate(image.astype(int)):
        step = numpy.diff(numpy.concatenate([[0], row, [0]]))              # (65,)
        starts, ends = numpy.nonzero(step == 1)[0], numpy.nonzero(step == -1)[0] - 1
        if len(starts):
            spans[r] = list(zip(starts.tolist(), ends.tolist()))
    return spans


def expand(spec_rows):
    """Spec-style {(first row, last row): [(first col, last col), ...]} -> row_spans form."""
    return {r: cols for (r0, r1), cols in spec_rows.items() for r in range(r0, r1 + 1)}


# ---------------------------------------------------------------- renderer vs real frames

# Spec §4: the model misses at most 4 px in any real frame, 24 px over all 320 frames
# (with its 0.001 px edge shrink), so no measured count may be off by more.
MAX_FRAME_ERROR, MAX_TOTAL_ERROR = 4, 24

MEASURED_BY_SCALE = {      # on-pixels at pos (0, 0), orientation 0, scales 0.5 .. 1
    HEART: [58, 84, 108, 140, 182, 222],
    ELLIPSE: [76, 104, 144, 184, 228, 288],
    SQUARE: [100, 144, 196, 256, 324, 400],
}
MEASURED_BY_ORIENTATION = {   # on-pixels at scale 1, pos (0, 0), orientation 0 .. 39
    HEART: "222 225 226 225 224 225 227 224 225 225 225 224 225 225 225 225 226 228 220 226 "
           "226 220 228 226 225 225 225 225 224 225 225 225 224 227 225 224 225 226 225 222",
    ELLIPSE: "288 288 290 292 292 288 286 294 292 286 290 288 286 288 292 294 286 286 288 290 "
             "290 288 286 286 294 292 288 286 288 290 286 292 294 286 288 292 292 290 288 288",
    SQUARE: "400 368 372 368 368 364 368 368 372 368 372 368 368 368 368 368 368 368 372 368 "
            "368 372 368 368 368 368 368 368 368 372 368 372 368 368 364 368 368 372 368 400",
}
MEASURED_HEART_BY_POSY = ("222 222 224 226 226 226 226 224 224 224 224 224 224 222 220 220 220 "
                          "222 228 226 228 228 232 232 230 230 228 224 224 224 222 222")


def test_pixel_counts_match_the_real_frames():
    rendered, measured = [], []
    for shape in (SQUARE, ELLIPSE, HEART):
        rendered.append(on_pixels(classes(shape, scale=numpy.arange(6))))
        measured.append(MEASURED_BY_SCALE[shape])
        rendered.append(on_pixels(classes(shape, orientation=numpy.arange(40))))
        measured.append([int(n) for n in MEASURED_BY_ORIENTATION[shape].split()])
    rendered.append(on_pixels(classes(HEART, pos_y=numpy.arange(32))))
    measured.append([int(n) for n in MEASURED_HEART_BY_POSY.split()])
    error = numpy.abs(numpy.concatenate(rendered) - numpy.concatenate(measured))   # (244,)
    assert error.max() <= MAX_FRAME_ERROR, error
    assert error.sum() <= MAX_TOTAL_ERROR, error


MEASURED_SPANS = {         # (shape, scale, orientation) at pos (0, 0): rows -> column runs
    (HEART, 5, 0): {(7, 7): [(9, 13), (18, 22)], (8, 8): [(8, 14), (17, 23)],
                    (9, 9): [(7, 14), (17, 24)], (10, 10): [(7, 24)], (11, 12): [(6, 25)],
                    (13, 14): [(7, 24)], (15, 16): [(8, 23)], (17, 17): [(9, 22)],
                    (18, 18): [(10, 21)], (19, 19): [(11, 20)], (20, 20): [(12, 19)],
                    (21, 21): [(13, 18)], (22, 22): [(14, 17)], (23, 23): [(15, 16)]},
    (HEART, 0, 0): {(11, 11): [(13, 13), (18, 18)], (12, 12): [(12, 19)], (13, 14): [(11, 20)],
                    (15, 16): [(12, 19)], (17, 17): [(13, 18)], (18, 18): [(14, 17)],
                    (19, 19): [(15, 16)]},
    (ELLIPSE, 5, 0): {(9, 9): [(10, 21)], (10, 10): [(8, 23)], (11, 11): [(6, 25)],
                      (12, 12): [(5, 26)], (13, 14): [(4, 27)], (15, 16): [(3, 28)],
                      (17, 18): [(4, 27)], (19, 19): [(5, 26)], (20, 20): [(6, 25)],
                      (21, 21): [(8, 23)], (22, 22): [(10, 21)]},
    (ELLIPSE, 0, 0): {(12, 12): [(14, 17)], (13, 13): [(11, 20)], (14, 17): [(10, 21)],
                      (18, 18): [(11, 20)], (19, 19): [(14, 17)]},
    (SQUARE, 0, 0): {(11, 20): [(11, 20)]},
    (SQUARE, 5, 0): {(6, 25): [(6, 25)]},
    # at 46 degrees a diamond: row r spans 15 - n .. 16 + n, n = distance from the tip row
    (SQUARE, 5, 5): {(r, r): [(15 - min(r - 3, 28 - r), 16 + min(r - 3, 28 - r))]
                     for r in range(3, 29)},
}


@pytest.mark.parametrize("key", MEASURED_SPANS, ids=lambda k: "shape%d-scale%d-orient%d" % k)
def test_row_spans_match_the_real_frames(key):
    image = renderer.render(classes(*key))[0]                                    # (64, 64)
    assert row_spans(image) == expand(MEASURED_SPANS[key])


def test_rotation_is_counter_clockwise():
    # Spec §5: the heart at orientation 5 has rows 5-21, its right edge at column 21 on rows
    # 10-21 and a bottom row 9-21: the tip has turned towards the lower right.
    spans = row_spans(renderer.render(classes(HEART, orientation=5))[0])
    assert min(spans) == 5 and max(spans) == 21
    assert all(spans[r][-1][1] == 21 for r in range(10, 22))
    assert spans[21] == [(9, 21)]


def test_positions_run_right_and_down():
    # Square, scale 0.5 (rows/cols 11-20 at pos 0): posX moves columns, posY rows, by 32 px
    # over the 31 steps; with POSY_DOWN, posY = 31 is at the bottom (spec §7: rows 43-52).
    image = renderer.render(classes(SQUARE, scale=0, pos_x=31, pos_y=31))[0]    # (64, 64)
    rows, cols = numpy.nonzero(image)
    assert (cols.min(), cols.max()) == (43, 52)
    assert (rows.min(), rows.max()) == ((43, 52) if POSY_DOWN else (11, 20))


def test_orientation_0_and_39_give_the_same_image():
    grid = numpy.stack(numpy.meshgrid(range(3), range(6), range(32), range(32),
                                      indexing="ij"), axis=-1).reshape(-1, 4)   # (18432, 4)
    at_0 = numpy.insert(grid, 2, 0, axis=1)                                # (18432, K)
    at_39 = numpy.insert(grid, 2, 39, axis=1)                              # (18432, K)
    assert numpy.array_equal(renderer.render(at_0), renderer.render(at_39))


def test_images_are_binary_and_stay_off_the_border():
    rng = numpy.random.default_rng(1)
    idx = rng.integers(0, renderer.N_IMAGES, 2000)                          # (N,)
    x = renderer.render(renderer.index_to_classes(idx))                     # (N, 64, 64)
    assert x.dtype == numpy.uint8 and x.shape == (2000, 64, 64)
    assert set(numpy.unique(x).tolist()) <= {0, 1}
    border = numpy.ones((64, 64), dtype=bool)
    border[1:-1, 1:-1] = False
    assert not x[:, border].any()


def test_dataset_mean_pixel_matches_the_real_file():
    # disent's statistic over all 737,280 real images; spec §4's model is within 0.02 %.
    # 100k random images estimate the mean to about 0.15 % (one standard error).
    idx = numpy.random.default_rng(2).integers(0, renderer.N_IMAGES, 100_000)   # (100000,)
    mean = data.open_dataset().images(idx).mean(dtype=numpy.float64)
    assert abs(mean / 0.042494423521889584 - 1) < 0.01, mean


def test_render_rejects_bad_classes():
    with pytest.raises(ValueError, match="orientation has classes outside 0..39"):
        renderer.render(classes(HEART, orientation=40))
    with pytest.raises(ValueError, match=r"shape \(\.\.\., 5\)"):
        renderer.render(numpy.zeros((3, 4), dtype=int))


def test_cupy_renders_what_numpy_renders(cupy):
    c = renderer.index_to_classes(numpy.random.default_rng(3).integers(0, renderer.N_IMAGES, 5000))
    assert numpy.array_equal(cupy.asnumpy(renderer.render(c, cupy)), renderer.render(c))
    x = data.open_dataset().images(numpy.arange(12).reshape(3, 4), cupy, numpy.float32)
    assert isinstance(x, cupy.ndarray) and x.dtype == numpy.float32 and x.shape == (3, 4, 4096)


# ---------------------------------------------------------------- indexing and the interface

def test_index_and_classes_round_trip():
    idx = numpy.random.default_rng(4).integers(0, renderer.N_IMAGES, 1000)     # (1000,)
    c = renderer.index_to_classes(idx)                                         # (1000, K)
    # The real file's latents_bases (spec §3), colour dropped.
    assert numpy.array_equal(c @ numpy.array([245760, 40960, 1024, 32, 1]), idx)
    assert numpy.array_equal(renderer.classes_to_index(c), idx)
    assert renderer.index_to_classes(numpy.array([0])).tolist() == [[0, 0, 0, 0, 0]]
    last = numpy.array([renderer.N_IMAGES - 1])
    assert renderer.index_to_classes(last).tolist() == [[2, 5, 39, 31, 31]]


def test_renderer_dataset_interface():
    ds = data.open_dataset()
    assert (ds.factor_names, ds.factor_sizes) == (renderer.FACTOR_NAMES, renderer.FACTOR_SIZES)
    assert ds.n_images == renderer.N_IMAGES == numpy.prod(renderer.FACTOR_SIZES)
    assert ds.source == "renderer"
    idx = numpy.array([[0, 5, 700_000], [123_456, 1, 2]])                  # (M, B)
    x = ds.images(idx, dtype=numpy.float32)                                # (M, B, P)
    assert x.shape == (2, 3, 4096) and x.dtype == numpy.float32
    assert numpy.array_equal(x[1, 0].reshape(64, 64), renderer.render(ds.factors(idx)[1, :1])[0])
    assert ds.factors(idx).shape == (2, 3, 5)
    with pytest.raises(ValueError, match="indices must lie in 0..737279"):
        ds.images(numpy.array([renderer.N_IMAGES]))


# ---------------------------------------------------------------- the real file's loader

SMALL = (3, 2, 2, 2, 2)        # a reduced grid in the real format: 48 images


def real_format_classes(n=48):
    """latents_classes (n, 1 + K) of the SMALL grid: colour 0, then the row-major factors."""
    return numpy.concatenate([numpy.zeros((n, 1), int),
                              renderer.index_to_classes(numpy.arange(n), SMALL)], axis=1)


def write_npz(path, **change):
    """An npz laid out like the real file, over the SMALL grid; `change` replaces (or, with
    None, drops) arrays. metadata is a pickled object, as in the real file."""
    arrays = {
        "imgs": numpy.random.default_rng(5).integers(0, 2, (48, 64, 64)).astype(numpy.uint8),
        "latents_classes": real_format_classes(),
        "latents_values": numpy.ones((48, 6)),
        "metadata": numpy.array({"title": "dSprites dataset"}, dtype=object),
    }
    arrays.update(change)
    numpy.savez_compressed(path, **{k: v for k, v in arrays.items() if v is not None})
    return arrays


def test_loader_accepts_a_well_formed_file(tmp_path):
    path = tmp_path / "good.npz"
    arrays = write_npz(path)
    ds = data.open_dataset(str(path), factor_sizes=SMALL)
    assert ds.source == str(path.resolve()) and ds.n_images == 48
    idx = numpy.array([[47, 3], [0, 20]])                                  # (M, B)
    assert numpy.array_equal(ds.images(idx), arrays["imgs"][idx].reshape(2, 2, 4096))
    assert numpy.array_equal(ds.factors(idx), arrays["latents_classes"][idx][..., 1:])


def colour_one_at_row_7():
    c = real_format_classes()
    c[7, 0] = 1
    return c


BROKEN = {   # defect -> (arrays that replace the good ones, what the message must say)
    "no imgs": ({"imgs": None}, r"should hold arrays \['imgs', 'latents_classes'\] like "
                                r"dSprites' dsprites_ndarray_.*found \['latents_classes', "
                                r"'latents_values', 'metadata'\]"),
    "no classes": ({"latents_classes": None}, r"found \['imgs', 'latents_values', 'metadata'\]"),
    "float imgs": ({"imgs": numpy.zeros((48, 64, 64), numpy.float32)},
                   r"imgs should be uint8 \(48, 64, 64\), found float32 \(48, 64, 64\)"),
    "too few imgs": ({"imgs": numpy.zeros((47, 64, 64), numpy.uint8)},
                     r"should be uint8 \(48, 64, 64\), found uint8 \(47, 64, 64\)"),
    "0/255 imgs": ({"imgs": numpy.full((48, 64, 64), 255, numpy.uint8)},
                   r"imgs values should be 0 or 1, found values up to 255"),
    "classes without colour": ({"latents_classes": real_format_classes()[:, 1:]},
                               r"integers of shape \(48, 6\).*found int64 \(48, 5\)"),
    "float classes": ({"latents_classes": real_format_classes().astype(float)},
                      r"found float64 \(48, 6\)"),
    "rows out of order": ({"latents_classes": real_format_classes()[::-1]},
                          r"latents_classes row 0 .* should be \[0, 0, 0, 0, 0, 0\], "
                          r"found \[0, 2, 1, 1, 1, 1\]"),
    "colour not 0": ({"latents_classes": colour_one_at_row_7()},
                     r"row 7 .* should be \[0, 0, 0, 1, 1, 1\], found \[1, 0, 0, 1, 1, 1\]"),
    "pickled imgs": ({"imgs": numpy.array([None], dtype=object)},
                     r"not a readable \.npz archive of plain arrays"),
}


@pytest.mark.parametrize("defect", BROKEN)
def test_loader_rejects_a_broken_file(tmp_path, defect):
    change, message = BROKEN[defect]
    path = tmp_path / "broken.npz"
    write_npz(path, **change)
    with pytest.raises(data.DataError, match=message) as err:
        data.open_dataset(str(path), factor_sizes=SMALL)
    assert str(path) in str(err.value) and "fetch the original" in str(err.value)


def test_loader_rejects_a_missing_or_foreign_file(tmp_path):
    with pytest.raises(data.DataError, match="no such file"):
        data.open_dataset(str(tmp_path / "absent.npz"))
    text = tmp_path / "notes.npz"
    text.write_text("not an archive")
    with pytest.raises(data.DataError, match=r"notes.npz: not a dSprites .npz \(an .npz is a "
                       r"zip archive, and this file is not one: it begins b'not '\)") as err:
        data.open_dataset(str(text))
    assert "pickle" not in str(err.value)       # NumPy's advice to unpickle it is not passed on


def test_loader_checks_the_full_grid_by_default(tmp_path):
    path = tmp_path / "small.npz"
    write_npz(path)
    with pytest.raises(data.DataError, match=r"uint8 \(737280, 64, 64\), found uint8 \(48,"):
        data.open_dataset(str(path))


# ---------------------------------------------------------------- split and sampler

def test_split_is_fixed_disjoint_and_complete():
    test, train = data.test_split()
    assert len(test) == data.TEST_SIZE and len(test) + len(train) == renderer.N_IMAGES
    # together exactly every image once: no overlap, nothing missing
    both = numpy.sort(numpy.concatenate([test, train]))                   # (N,)
    assert numpy.array_equal(both, numpy.arange(renderer.N_IMAGES))
    assert numpy.all(numpy.diff(test) > 0) and numpy.all(numpy.diff(train) > 0)
    again, _ = data.test_split()
    other, _ = data.test_split(seed=data.SPLIT_SEED + 1)
    assert numpy.array_equal(test, again) and not numpy.array_equal(test, other)
    # drawn from the whole grid: every shape is held out about equally
    assert numpy.all(numpy.abs(numpy.bincount(renderer.index_to_classes(test)[:, 0]) - 3333) < 200)


def test_sampler_draws_only_train_images_uniformly():
    train = numpy.arange(0, 70, 7)                                         # (10,)
    idx = data.BatchSampler(train, [0, 1]).next(50_000)                    # (2, 50000)
    assert idx.shape == (2, 50_000) and idx.dtype == numpy.int64
    assert set(numpy.unique(idx).tolist()) == set(train.tolist())
    counts = numpy.stack([numpy.bincount(m // 7, minlength=10) for m in idx])   # (2, 10)
    assert numpy.all(numpy.abs(counts - 5000) < 350)      # 5 standard deviations


def test_samplers_with_the_same_seeds_agree_and_models_are_independent():
    _, train = data.test_split()
    a, b = data.BatchSampler(train, [3, 4]), data.BatchSampler(train, [3, 4])
    assert all(numpy.array_equal(a.next(64), b.next(64)) for _ in range(3))
    both = data.BatchSampler(train, [3, 4]).next(64)                       # (2, 64)
    alone = [data.BatchSampler(train, [s]).next(64)[0] for s in (3, 4)]   # 2 x (64,)
    assert numpy.array_equal(both, numpy.stack(alone))
    assert not numpy.array_equal(both[0], both[1])


def test_sampler_state_round_trips_through_json():
    _, train = data.test_split()
    sampler = data.BatchSampler(train, [7, 8])
    sampler.next(64)
    saved = json.loads(json.dumps(sampler.state()))
    expected = [sampler.next(64) for _ in range(2)]
    resumed = data.BatchSampler(train, [7, 8])
    resumed.set_state(saved)
    assert all(numpy.array_equal(e, resumed.next(64)) for e in expected)
    with pytest.raises(ValueError, match=r"seeds \[7, 8\].*not \[7\]"):
        data.BatchSampler(train, [7]).set_state(saved)


# ---------------------------------------------------------------- the picture

def test_show_writes_a_png(tmp_path):
    out = tmp_path / "samples.png"
    data.show(data.open_dataset(), str(out))
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_an_unreadable_data_file_is_bad_input_named_as_such(tmp_path, monkeypatch):
    """Root reads any file, so the refusal is staged: open() of that one path raises what a
    file without read permission gives (it used to escape as a failed write of the run)."""
    path = tmp_path / "locked.npz"
    path.write_bytes(b"PK\x03\x04")
    real_open = open

    def refusing_open(file, *args, **kwargs):
        if str(file) == str(path):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)
    monkeypatch.setattr("builtins.open", refusing_open)
    with pytest.raises(data.DataError, match=r"locked.npz: cannot read it \(Permission denied\)"):
        data.open_dataset(str(path))
