"""The committed reports under results/ are what today's code writes from the committed runs'
small files (metrics.json, curve.json): a change to the report code that moves a committed
table shows here, and the results are then to be regenerated and committed again."""
import glob
import json
import os

import pytest

from tinyvae.experiment.reports.learning_curves import write_curves
from tinyvae.experiment.studies.opening import opening_report, write_opening_report
from tinyvae.experiment.reports.full_report import write_report

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# report folder, the run directories' files it is written from, the text files compared
REPORTS = [("results/gpu/report", "results/gpu/runs/*/metrics.json", write_report,
            ("table1.md", "table1.csv", "trials.md", "trials.csv")),
           ("results/cpu/report", "results/cpu/runs/*/metrics.json", write_report,
            ("table1.md", "table1.csv", "trials.md", "trials.csv")),
           ("results/study/report", "results/study/runs/*/metrics.json", write_report,
            ("table1.md", "table1.csv", "trials.md", "trials.csv")),
           ("results/opening/report", "results/opening/runs/*/metrics.json", write_report,
            ("table1.md", "table1.csv", "trials.md", "trials.csv")),
           ("results/long/report", "results/long/runs/*/metrics.json", write_report,
            ("table1.md", "table1.csv", "trials.md", "trials.csv")),
           ("results/endstate/report", "results/endstate/runs/*/metrics.json", write_report,
            ("table1.md", "table1.csv", "trials.md", "trials.csv")),
           ("results/dose/report", "results/dose/runs/*/metrics.json", write_report,
            ("table1.md", "table1.csv", "trials.md", "trials.csv")),
           ("results/curves", "results/curves/runs/*/curve.json", write_curves,
            ("curves.md", "curves.csv")),
           ("results/endstate/report", "results/endstate/runs/*/curve.json", write_curves,
            ("curves.md", "curves.csv"))]


@pytest.mark.parametrize("report, pattern, write, names", REPORTS,
                         ids=[f"{r[0]}/{r[3][0]}" for r in REPORTS])
def test_a_committed_report_is_what_its_committed_runs_give(report, pattern, write, names,
                                                              tmp_path):
    paths = sorted(glob.glob(os.path.join(ROOT, pattern)))
    assert len(paths) >= 2, pattern                     # the runs are committed beside it
    records, protocol = [], None
    for path in paths:
        with open(path) as f:
            scored = json.load(f)
        records += scored["models"]
        protocol = scored["protocol"]
    write(records, protocol, tmp_path)
    assert_written_as_committed(tmp_path, report, names)


def assert_written_as_committed(written, report, names):
    """Each file of `names` that today's code wrote in `written` equals the committed one."""
    for name in names:
        with open(os.path.join(ROOT, report, name)) as f:
            committed = f.read()
        assert (written / name).read_text() == committed, f"{report}/{name}"


@pytest.mark.parametrize("study, group, first, also", [("opening", 2, "g33-b1", "long"),
                                                       ("long", 2, "g33-b1", None),
                                                       ("endstate", 3, "g6-b4", None)])
def test_the_committed_opening_report_is_what_its_committed_runs_give(study, group, first, also,
                                                                     tmp_path):
    """results/<study>/report/opening.md and .csv: group 2 of the second-group study (T1 at
    10,000 steps, its survival section following the routed and unrouted models on to their
    20,000 steps; its models at 20,000), z3 of T2's six groups, from the committed runs'
    metrics.json and log.csv (the order of the arms is the script's)."""
    runs = sorted(glob.glob(os.path.join(ROOT, f"results/{study}/runs/*")))
    assert [os.path.basename(r) for r in runs][:2] == [first, first + "-none"]
    longer = sorted(glob.glob(os.path.join(ROOT, f"results/{also}/runs/*"))) if also else []
    write_opening_report(opening_report(runs, group, longer), tmp_path)
    assert_written_as_committed(tmp_path, f"results/{study}/report", ("opening.md", "opening.csv"))
