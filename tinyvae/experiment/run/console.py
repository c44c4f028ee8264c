"""This process's output, written so that a reader that goes away ends nothing: `train.py ...
2>&1 | tee log`, and the tee stopped first (the same Ctrl-C reaches it; a kill). Without it,
the first write to the closed pipe raises BrokenPipeError wherever it happens (the progress
bar, mid-step), and the run ends with status 1 and nothing saved.

Shapes: none.
"""
import contextlib
import os
import sys


class Output:
    """sys.stdout or sys.stderr, written so that a reader that has gone ends nothing: the write
    that finds its pipe closed points the stream's file at the null device, so that no later
    write fails (the progress bar, the last line, Python's flush at exit). The SIGPIPE that
    came with it stops training as the other stop signals do."""

    def __init__(self, stream):
        self.stream, self.gone = stream, False

    def write(self, text):
        if not self.gone:
            try:
                return self.stream.write(text)
            except BrokenPipeError:
                self._gone()
        return len(text)

    def flush(self):
        if not self.gone:
            try:
                self.stream.flush()
            except BrokenPipeError:
                self._gone()

    def _gone(self):
        self.gone = True
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, self.stream.fileno())
        os.close(null)

    def __getattr__(self, name):
        return getattr(self.stream, name)       # isatty, fileno, encoding: the stream's


@contextlib.contextmanager
def output_whose_reader_may_go():
    """sys.stdout and sys.stderr as Output, for as long as it lasts; flushed at its end, so
    that a closed pipe is found here and not in Python's flush at exit (status 120)."""
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = Output(sys.stdout), Output(sys.stderr)
    try:
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        sys.stdout, sys.stderr = saved
