"""The calibration: the simulated rater and service, and a small run of the CLI."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest
from scipy import stats

from demos.cj_demo import calibrate as calibration
from demos.cj_demo.bt import logistic
from demos.cj_demo.calibrate import binomial_sizes, main, simulate
from demos.cj_demo.design import make_design


@pytest.fixture(scope="module")
def design():
    return make_design()


def pooled(design, eta, order, sessions=200, seed=0):
    rng = np.random.default_rng(seed)
    runs = [simulate(design, eta=eta, order=order, cache=False, rng=rng) for _ in range(sessions)]
    return runs


@pytest.mark.parametrize("eta", [0.0, 0.8])
def test_first_position_share_matches_the_rater(design, eta):
    runs = pooled(design, eta, "randomized")
    a, b = design.caller_order()
    # With a fair coin per request each essay is first half the time.
    d = design.theta[a] - design.theta[b]
    expected = float(np.mean((logistic(eta + d) + logistic(eta - d)) / 2))
    share = np.mean([run.first_won.mean() for run in runs])
    assert share == pytest.approx(expected, abs=0.01)  # SE about 0.0023 over 45,000 judgements
    swapped = np.mean([np.mean(run.first != a) for run in runs])
    assert swapped == pytest.approx(0.5, abs=0.01)
    assert all(run.randomized for run in runs)
    if eta == 0.0:
        assert expected == pytest.approx(0.5)


def test_as_sent_never_swaps(design):
    a, b = design.caller_order()
    runs = pooled(design, 0.8, "as_sent", sessions=50)
    for run in runs:
        np.testing.assert_array_equal(run.first, a)
        np.testing.assert_array_equal(run.second, b)
        assert not run.randomized
    # The rater wins for the first-presented essay with logistic(eta + theta_a - theta_b).
    expected = float(np.mean(logistic(0.8 + design.theta[a] - design.theta[b])))
    assert np.mean([run.first_won.mean() for run in runs]) == pytest.approx(expected, abs=0.02)


def test_a_cache_repeats_the_original_response(design):
    run = simulate(design, eta=0.8, order="randomized", cache=True, rng=np.random.default_rng(4))
    for original, repeat in design.replicate_pairs:
        assert run.first[repeat] == run.first[original]
        assert run.first_won[repeat] == run.first_won[original]
        assert run.winner[repeat] == run.winner[original]


def test_binomial_sizes_are_exact():
    position, balance = binomial_sizes(225)
    k = np.arange(226)
    pmf = stats.binom.pmf(k, 225, 0.5)
    p_values = np.array([stats.binomtest(int(i), 225).pvalue for i in k])
    for level, size in position.items():
        assert size == pytest.approx(pmf[p_values < level].sum(), rel=1e-9)
    assert balance[3.0] == pytest.approx(pmf[(k < 90) | (k > 135)].sum(), rel=1e-9)
    assert position[1e-3] > 1e-4 >= position[1e-4]


def test_calibrate_puts_thresholds_beyond_every_simulated_session(design):
    ticks = []
    result = calibration.calibrate(0.0, 200, np.random.SeedSequence(5), lambda: ticks.append(1))
    t = result.thresholds
    assert len(ticks) == 200 + 2 * 20
    assert t.sessions == 200
    assert t.spearman_min <= result.metrics["spearman"].min() < t.spearman_min + 0.01
    assert t.ssr_min <= result.metrics["ssr"].min()
    assert t.coverage_min <= result.metrics["coverage"].min()
    assert t.z_sd_max - 0.01 < result.metrics["z_sd"].max() <= t.z_sd_max
    for name in ("spearman", "ssr", "coverage", "z_sd"):
        assert t.false_fail[name] == 0.0
    assert t.position_p_min == 1e-4
    assert t.swapped_share_halfwidth == pytest.approx(4 * np.sqrt(0.25 / 225))
    assert result.cache_detected == 1.0
    assert result.cache_max_p < 1e-6


def load(path, name, monkeypatch):
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, name, module)
    spec.loader.exec_module(module)
    return module


def test_a_small_run_prints_and_writes_nothing_without_write(tmp_path, capsys):
    thresholds_path, doc_path = tmp_path / "thresholds.py", tmp_path / "doc.md"
    committed = [calibration.THRESHOLDS_PATH, calibration.DOC_PATH]
    before = [path.read_bytes() for path in committed]
    assert main(["--sessions", "200"], thresholds_path=thresholds_path, doc_path=doc_path) == 0
    assert [path.read_bytes() for path in committed] == before
    out = capsys.readouterr().out
    assert "## η = 0\n" in out
    assert "## η = 0.8\n" in out
    assert "Spearman >=" in out
    assert "**union**" in out
    assert list(tmp_path.iterdir()) == []


def test_write_produces_an_importable_thresholds_module(tmp_path, capsys, monkeypatch):
    thresholds_path, doc_path = tmp_path / "thresholds.py", tmp_path / "docs" / "doc.md"
    args = ["--sessions", "20", "--seed", "9", "--write"]
    assert main(args, thresholds_path=thresholds_path, doc_path=doc_path) == 0
    assert doc_path.read_text(encoding="utf-8") == capsys.readouterr().out.removesuffix("\n")
    module = load(thresholds_path, "generated_cj_thresholds", monkeypatch)
    assert set(module.THRESHOLDS) == {0.0, 0.8}
    assert module.thresholds_for(0.8).sessions == 20
    assert "union" in module.thresholds_for(0.0).false_fail
    text = thresholds_path.read_text(encoding="utf-8")
    assert "--sessions 20 --seed 9 --write" in text
    assert "'" not in text.split("# BEGIN GENERATED")[1]  # double quotes, as ruff formats


def test_too_few_sessions_is_an_error(tmp_path):
    with pytest.raises(SystemExit):
        main(["--sessions", "5"], thresholds_path=tmp_path / "t.py", doc_path=tmp_path / "d.md")
