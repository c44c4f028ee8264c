"""dSprites: the renderer (render.py) and the dataset the models train and are scored on
(dataset.py: the renderer or the real file, the fixed test split, per-model batch streams)."""
