"""Compare the renderer with the real dSprites frames of the dataset README's animated GIF.

    python scripts/check_renderer.py path/to/dsprites.gif

The GIF (github.com/deepmind/dsprites-dataset, 320 frames of 64x64, pixels 0/255) is not part
of tinyvae. Prints the wrong pixels of every frame that has any, then the totals per shape.
"""
import sys

import numpy
from PIL import Image

from tinyvae.data.render import render

SHAPES = ("square", "ellipse", "heart")


def frame_classes():
    """(320, 5) factor classes of the GIF's frames, in its order. Unless a sweep says
    otherwise a frame has scale 5, orientation 0, posX 0, posY 0."""
    rows = []

    def sweep(shape, factor, values, **fixed):
        for k in values:
            c = {"scale": 5, "orientation": 0, "posX": 0, "posY": 0, **fixed}
            c[factor] = k
            rows.append((shape, c["scale"], c["orientation"], c["posX"], c["posY"]))

    up, down = range(6), range(5, -1, -1)
    for shape in (2, 1, 0):                          # heart, ellipse, square
        for scales in (up, down, up):
            sweep(shape, "scale", scales)
        sweep(shape, "orientation", range(40))
        if shape == 2:                               # the heart's walk around the border
            sweep(2, "posY", range(32))
            sweep(2, "posX", range(32), posY=31)
            sweep(2, "posY", range(31, -1, -1), posX=31)
            sweep(2, "posX", range(31, -1, -1))
        sweep(shape, "scale", down)
    return numpy.array(rows)                         # (320, 5)


def main(path):
    gif = Image.open(path)
    classes = frame_classes()                                              # (320, 5)
    real = numpy.empty((gif.n_frames, 64, 64), dtype=numpy.uint8)          # (320, 64, 64)
    for i in range(gif.n_frames):
        gif.seek(i)
        real[i] = numpy.asarray(gif.convert("L")) > 127
    wrong = (render(classes) != real).reshape(len(real), -1).sum(axis=1)   # (320,)
    for i in numpy.nonzero(wrong)[0]:
        print(f"frame {i:3d} classes {classes[i].tolist()}: {wrong[i]} px wrong")
    for shape, name in enumerate(SHAPES):
        mine = classes[:, 0] == shape
        print(f"{name:8s} {mine.sum():3d} frames: {wrong[mine].sum()} px wrong")
    print(f"total {wrong.sum()} of {real.size} px wrong; worst frame {wrong.argmax()} "
          f"({wrong.max()} px)")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python scripts/check_renderer.py path/to/dsprites.gif")
    main(sys.argv[1])
