"""What a run is: the settings that make it (its identity), its name, the paper's values of the
settings that older runs predate, the model it builds, what makes two runs one configuration of
a report and that configuration's label, and what config.json records of where it was trained.

A run's config is the dict train.py makes from its flags and writes to config.json; evaluate.py
copies its settings into each model's record of metrics.json, so the same functions read both.
A new setting is added here (IDENTITY, paper_setting, run_name, config_key, config_label) and
in train.py's flags.

Shapes: none (settings only).
"""
import importlib.metadata
import platform

import numpy

from ...backend import device_name
from ...vae import DECODER_HIDDEN, ENCODER_HIDDEN, GroupedVAE, scales_kl

# Settings that define what is trained: a resumed run must agree on all of them.
IDENTITY = ("model", "latent", "groups", "routing", "kl_scale", "encoder_hidden",
            "decoder_hidden", "model_betas", "model_seeds", "batch_size", "lr", "data")


def paper_setting(config, key):
    """The value of setting `key` that a run made before it was a setting was trained with
    (the paper's), or None for a setting every run records."""
    return {"routing": "paper", "kl_scale": [1.0] * len(config.get("groups", [])),
            "encoder_hidden": list(ENCODER_HIDDEN),
            "decoder_hidden": list(DECODER_HIDDEN)}.get(key)


def setting(config, key):
    """A run's setting `key`, from its config.json or a record of its metrics.json; from a run
    made before the setting existed, the value it was trained with then."""
    return config[key] if key in config else paper_setting(config, key)


def differences(old, config):
    """Where `config` would train another run than `old` (a run's config.json): one
    'key: run has ..., flags give ...' per identity setting that differs."""
    return [f"{k}: run has {setting(old, k)!r}, flags give {config[k]!r}"
            for k in IDENTITY if setting(old, k) != config[k]]


def seeds_name(first, count):
    """The seeds part of a run's name: s3 for one seed, s0-9 for ten."""
    return f"s{first}" if count == 1 else f"s{first}-{first + count - 1}"


def run_name(config):
    """model-b<betas>[-g<groups>][-routing-none][-kl<scale>][-eh<widths>][-dh<widths>]-s<seeds>:
    every setting that is not the paper's shows."""
    betas = ",".join(f"{b:g}" for b in config["betas"])
    groups = "-g" + ",".join(map(str, config["groups"])) if config["model"] == "grouped" else ""
    routing = "" if config["routing"] == "paper" else f"-routing-{config['routing']}"
    scale = ("-kl" + ",".join(f"{s:g}" for s in config["kl_scale"])
             if scales_kl(config["kl_scale"]) else "")
    widths = ""
    for part in ("encoder", "decoder"):
        if config[f"{part}_hidden"] != paper_setting(config, f"{part}_hidden"):
            widths += f"-{part[0]}h" + ",".join(map(str, config[f"{part}_hidden"]))
    return (f"{config['model']}-b{betas}{groups}{routing}{scale}{widths}-"
            + seeds_name(config["seed"], config["seeds"]))


def build_model(config, xp=numpy, dtype=numpy.float32):
    """A GroupedVAE shaped as `config` says (its weights still at their initial values)."""
    return GroupedVAE(groups=config["groups"], beta=config["model_betas"],
                      models=len(config["model_seeds"]), seed=config["model_seeds"],
                      xp=xp, dtype=dtype, routing=setting(config, "routing"),
                      kl_scale=setting(config, "kl_scale"),
                      encoder_hidden=setting(config, "encoder_hidden"),
                      decoder_hidden=setting(config, "decoder_hidden"))


def config_key(r):
    """(is β-VAE, β, groups, unrouted, KL scale per group, (encoder, decoder) widths) of a
    run's record: what makes two runs one configuration. Sorted, the keys give the paper's
    column order (Grouped-VAE first, its routing ablation next to it, then β-VAE by β)."""
    return (r["model"] != "grouped", float(r["beta"]), tuple(r["groups"]),
            setting(r, "routing") != "paper",
            tuple(float(s) for s in setting(r, "kl_scale")),
            (tuple(setting(r, "encoder_hidden")), tuple(setting(r, "decoder_hidden"))))


def config_label(beta_vae, beta, groups, unrouted=False, kl_scale=None, widths=None):
    """A configuration's name in the reports, from its config_key: "grouped", "β-VAE β=5",
    "grouped 6×1 β=4, no routing, KL scale 6,5,4,3,2,1, H=256"."""
    if beta_vae:
        label = f"β-VAE β={beta:g}" + ("" if groups == (6,) else f" Z={groups[0]}")
    else:
        sizes = (f"{len(groups)}×{groups[0]}" if len(set(groups)) == 1 and len(groups) > 2
                 else "+".join(map(str, groups)))                  # 6×1 for 1+1+1+1+1+1
        label = ("grouped" + ("" if groups == (3, 3) else " " + sizes)
                 + ("" if beta == 1 else f" β={beta:g}") + (", no routing" if unrouted else ""))
    if kl_scale and scales_kl(kl_scale):
        label += ", KL scale " + ",".join(f"{s:g}" for s in kl_scale)
    if widths and widths != (ENCODER_HIDDEN, DECODER_HIDDEN):
        both = set(widths[0] + widths[1])
        label += (f", H={both.pop()}" if len(both) == 1 else
                  ", H=" + ",".join(map(str, widths[0])) + "/" + ",".join(map(str, widths[1])))
    return label


def where_trained(xp, dataset):
    """What config.json records beside the settings: backend, device, versions, data."""
    versions = {"python": platform.python_version(), "numpy": numpy.__version__}
    for package in ("scikit-learn", "matplotlib", "tqdm"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    if xp is not numpy:
        versions["cupy"] = xp.__version__
    return {"backend": xp.__name__, "device": device_name(xp), "versions": versions,
            "data_source": dataset.source}
