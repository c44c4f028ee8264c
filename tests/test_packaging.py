"""What a user may do with the code and how to cite it: the MIT licence in LICENSE and in the
package's metadata, CITATION.cff naming this version and the paper, and the `gpu` extra."""
import os

import pytest
import yaml

tomllib = pytest.importorskip("tomllib", reason="tomllib is in Python 3.11 and later")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def read(name):
    with open(os.path.join(ROOT, name), encoding="utf-8") as f:
        return f.read()


PROJECT = tomllib.loads(read("pyproject.toml"))["project"]


def test_the_licence_is_mit_in_the_file_and_in_the_metadata():
    text = " ".join(read("LICENSE").split())
    assert text.startswith("MIT License Copyright (c) ")
    assert "Permission is hereby granted, free of charge, to any person" in text
    assert text.endswith("OTHER DEALINGS IN THE SOFTWARE.")
    assert PROJECT["license"] == "MIT" and PROJECT["license-files"] == ["LICENSE"]


def test_the_citation_names_this_version_its_licence_and_the_paper():
    cff = yaml.safe_load(read("CITATION.cff"))
    assert cff["cff-version"] == "1.2.0" and cff["type"] == "software"
    assert cff["version"] == PROJECT["version"] and cff["license"] == PROJECT["license"]
    assert cff["title"].startswith("tinyvae") and cff["authors"] and cff["message"]
    paper, = cff["references"]
    assert paper["title"] == ("Important Groups First: Encouraging Disentanglement in "
                              "Variational Autoencoders")
    assert paper["authors"] == [{"family-names": "Halevi", "given-names": "Gil"}]


def test_the_gpu_extra_brings_cupy_for_cuda_12_with_its_libraries():
    """CuPy 14's wheel (cupy_cuda12x-14.2.0's METADATA) requires Python >= 3.10, and its `ctk`
    extra brings cuda-toolkit[cublas,cudart,cufft,curand,cusolver,cusparse,nvrtc]==12.*:
    without it a driver-only machine has no cuBLAS or NVRTC."""
    assert PROJECT["optional-dependencies"]["gpu"] == ["cupy-cuda12x[ctk]>=14,<15"]
    assert "cupy" not in " ".join(PROJECT["dependencies"])
    assert PROJECT["requires-python"] == ">=3.10"
