"""The life of a run: what it is (configuration), its directory and files, whether it fits in
memory, training it step by step, its figures."""
