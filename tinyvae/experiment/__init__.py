"""What runs experiments on the core: run directories (runs.py), training figures (figures.py),
Table 1 and its figures (table1.py), learning curves (curves.py), two configurations side by
side (compare.py), the step benchmark (bench.py)."""
