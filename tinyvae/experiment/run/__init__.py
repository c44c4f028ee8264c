"""The life of a run: what it is (configuration), its directory and files, training it step by
step, its figures."""
