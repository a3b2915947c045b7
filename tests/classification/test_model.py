"""The classifier and its evaluation on real arXiv papers: fit, probabilities, calibration."""

from __future__ import annotations

import copy
import gzip
import itertools
import json
import pickle
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from arxiv_kedro.classification.evaluation import evaluate, expected_calibration_error
from arxiv_kedro.classification.model import (
    CHUNK,
    HASHER,
    OUTPUT_COLUMNS,
    IncompatibleModel,
    TextClassifier,
    check_input,
    ngram_counts,
    top3_frame,
)

CATEGORIES = ("astro-ph.GA", "cs.CL", "cs.CV", "cs.RO")
SMALL = {"min_df": 2, "n_jobs": 1}


def snapshot_papers(
    snapshot: Path, categories: Sequence[str], *, lines: int = 20_000, per_category: int = 400
) -> pd.DataFrame:
    """Real papers of the first `lines` records of a Kaggle-format snapshot whose primary
    category (the first of `categories`) is one of `categories`: about `per_category` of each,
    every n-th so that they span the whole period, oldest first. Columns: arxiv_id, title,
    abstract, label, published (00:00 UTC of the listing day, as the ingestion stores it)."""
    rows = []
    with gzip.open(snapshot, "rt", encoding="utf-8") as lines_of:
        for line in itertools.islice(lines_of, lines):
            record = json.loads(line)
            label = record["categories"].split()[0]
            if label in categories:
                text = record["title"], record["abstract"]
                rows.append((record["id"], *text, label, record["update_date"]))
    frame = pd.DataFrame(rows, columns=["arxiv_id", "title", "abstract", "label", "published"])
    frame["published"] = pd.to_datetime(frame["published"], utc=True)
    every = (frame.label.map(frame.label.value_counts()) // per_category).clip(lower=1)
    frame = frame[frame.groupby("label").cumcount() % every == 0]
    return frame.sort_values(["published", "arxiv_id"], kind="stable").reset_index(drop=True)


@pytest.fixture(scope="module")
def papers(daily_snapshot: Path) -> pd.DataFrame:
    return snapshot_papers(daily_snapshot, CATEGORIES)


@pytest.fixture(scope="module")
def train(papers: pd.DataFrame) -> pd.DataFrame:
    """The older 80 %."""
    return papers.iloc[: int(len(papers) * 0.8)]


@pytest.fixture(scope="module")
def held_out(papers: pd.DataFrame) -> pd.DataFrame:
    """The newest 20 %, with an index of its own (not 0..n-1)."""
    return papers.iloc[int(len(papers) * 0.8) :]


@pytest.fixture(scope="module")
def model(train: pd.DataFrame) -> TextClassifier:
    return TextClassifier(**SMALL).fit(train, train.label.tolist())


def accuracy(model: TextClassifier, papers: pd.DataFrame) -> float:
    return float((model.predict_top3(papers).label == papers.label).mean())


def test_the_sample_is_real_and_time_ordered(papers: pd.DataFrame) -> None:
    counts = papers.label.value_counts()
    assert set(counts.index) == set(CATEGORIES)
    assert (counts >= 150).all(), counts
    assert papers.published.is_monotonic_increasing
    assert papers.published.iloc[-1] - papers.published.iloc[0] > pd.Timedelta(days=90)


def test_fit_learns_every_category(model: TextClassifier, train: pd.DataFrame) -> None:
    words = {name: len(terms) for name, terms in model._terms.items()}

    assert list(model.classes_) == sorted(CATEGORIES)
    assert set(words) == {"title", "abstract"}
    assert words["abstract"] > words["title"] > 1000
    assert model.coef_.shape == (sum(words.values()), len(CATEGORIES))
    assert model.intercept_.shape == (len(CATEGORIES),)


def test_probabilities_are_distributions_over_the_classes(
    model: TextClassifier, held_out: pd.DataFrame
) -> None:
    probabilities = model.predict_proba(held_out)

    assert probabilities.shape == (len(held_out), len(CATEGORIES))
    assert np.isfinite(probabilities).all()
    assert ((probabilities >= 0) & (probabilities <= 1)).all()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=0, atol=1e-5)


def test_top3_is_ranked_and_matches_the_probabilities(
    model: TextClassifier, held_out: pd.DataFrame
) -> None:
    top3 = model.predict_top3(held_out)
    probabilities = model.predict_proba(held_out)

    assert list(top3.columns) == list(OUTPUT_COLUMNS)
    assert top3.index.equals(held_out.index)
    assert (top3.probability >= top3.probability_2).all()
    assert (top3.probability_2 >= top3.probability_3).all()
    assert (top3.label != top3.label_2).all()
    assert (top3.label_2 != top3.label_3).all()
    assert (top3.label != top3.label_3).all()
    assert set(top3[["label", "label_2", "label_3"]].stack()) <= set(CATEGORIES)
    np.testing.assert_allclose(top3.probability, probabilities.max(axis=1), rtol=1e-6)
    assert (top3.label.to_numpy() == model.classes_[probabilities.argmax(axis=1)]).all()


def test_top3_frame_ranks_ties_by_class_order() -> None:
    classes = np.array(["a", "b", "c", "d"], dtype=object)
    probabilities = np.array([[0.1, 0.4, 0.1, 0.4], [0.7, 0.1, 0.1, 0.1]])

    frame = top3_frame(probabilities, classes)

    assert frame.to_dict("records") == [
        {"label": "b", "probability": 0.4, "label_2": "d", "probability_2": 0.4}
        | {"label_3": "a", "probability_3": 0.1},
        {"label": "a", "probability": 0.7, "label_2": "b", "probability_2": 0.1}
        | {"label_3": "c", "probability_3": 0.1},
    ]


def test_newer_papers_are_mostly_classified_right(
    model: TextClassifier, held_out: pd.DataFrame
) -> None:
    majority = held_out.label.value_counts(normalize=True).max()

    assert accuracy(model, held_out) > max(0.8, majority + 0.3)


def test_calibration_fits_a_temperature_on_the_newest_papers(
    model: TextClassifier, train: pd.DataFrame, held_out: pd.DataFrame
) -> None:
    uncalibrated = TextClassifier(**SMALL | {"calibration_fraction": 0}).fit(train, train.label)

    assert model.temperature_ > 0
    assert model.temperature_ != 1.0
    assert uncalibrated.temperature_ == 1.0
    # same weights (both are refitted on every training paper), probabilities rescaled
    np.testing.assert_allclose(model.coef_, uncalibrated.coef_, atol=1e-3)  # liblinear tol
    truth = held_out.label.to_numpy(dtype=object)
    ece = {
        name: evaluate(m.predict_proba(held_out), m.classes_, truth)["metrics"]["ece"]
        for name, m in (("calibrated", model), ("uncalibrated", uncalibrated))
    }
    assert ece["calibrated"] < ece["uncalibrated"], ece


def kept(model: TextClassifier, name: str) -> set[str]:
    """The n-grams among a few probes whose hashed bucket `model` keeps for field `name`."""
    buckets = set(model._terms[name].buckets.tolist())
    return {probe for probe in ("the", "of the", "galaxies", "robot") if bucket(probe) in buckets}


def bucket(ngram: str) -> int:
    """The hashed bucket of a word or a 2-gram (a 2-gram's counts hold its words' too)."""
    words = ngram.split()
    of_words = {HASHER.transform([w]).indices[0] for w in words} if len(words) > 1 else set()
    [found] = set(HASHER.transform([ngram]).indices) - of_words
    return found


def test_the_terms_keep_ngrams_within_min_df_and_max_df(train: pd.DataFrame) -> None:
    sample = train.iloc[::4]
    loose = TextClassifier(**SMALL | {"min_df": 1, "calibration_fraction": 0}).fit(
        sample, sample.label
    )
    strict = TextClassifier(**SMALL | {"min_df": 5, "max_df": 0.3, "calibration_fraction": 0})
    strict.fit(sample, sample.label)

    assert len(strict._terms["abstract"]) < len(loose._terms["abstract"]) / 4
    assert {"the", "of the", "galaxies", "robot"} <= kept(loose, "abstract")
    assert "the" not in kept(strict, "abstract")  # in most abstracts
    assert "of the" not in kept(strict, "abstract")
    assert {"galaxies", "robot"} <= kept(strict, "abstract")


def test_counts_given_to_fit_are_the_ones_it_would_make(train: pd.DataFrame) -> None:
    sample, recipe = train.iloc[::3], SMALL | {"calibration_fraction": 0}
    counted = TextClassifier(**recipe).counts(train)
    rows = np.arange(0, len(train), 3)

    fitted = TextClassifier(**recipe).fit(sample, sample.label)
    given = TextClassifier(**recipe).fit(
        sample, sample.label, {name: c[rows] for name, c in counted.items()}
    )

    for name in ("title", "abstract"):
        np.testing.assert_array_equal(fitted._terms[name].buckets, given._terms[name].buckets)
    np.testing.assert_allclose(fitted.coef_, given.coef_, atol=1e-3)  # liblinear tol


def test_hashing_in_parallel_counts_the_same(train: pd.DataFrame) -> None:
    texts = (train.abstract.tolist() * 6)[: 3 * CHUNK + 7]

    parallel, serial = ngram_counts(texts, n_jobs=2), ngram_counts(texts)

    assert parallel.shape == serial.shape == (len(texts), HASHER.n_features)
    assert (parallel != serial).nnz == 0


def test_a_retrain_with_a_fit_per_core_gives_the_same_model(train: pd.DataFrame) -> None:
    # liblinear shuffles the papers with a generator per process: concurrent fits in threads
    # drew from the same one, and two fits of the same papers differed
    fits = [TextClassifier(min_df=2, n_jobs=2).fit(train, train.label.tolist()) for _ in range(3)]

    for fit in fits[1:]:
        np.testing.assert_array_equal(fit.coef_, fits[0].coef_)
        np.testing.assert_array_equal(fit.intercept_, fits[0].intercept_)
        assert fit.temperature_ == fits[0].temperature_


def test_a_model_pickled_by_an_earlier_version_says_so(model, held_out) -> None:
    state = {k: v for k, v in model.__dict__.items() if k != "_terms"}
    state["_vectorizers"] = {}  # what earlier versions had instead
    old = TextClassifier.__new__(TextClassifier)
    old.__setstate__(state)

    with pytest.raises(IncompatibleModel, match=r"earlier version of arxiv-kedro.*retrain"):
        old.predict_proba(held_out)


def test_time_decay_weighs_recent_papers_more(train: pd.DataFrame) -> None:
    model = TextClassifier(half_life_days=30)
    _, encoded = np.unique(train.label.to_numpy(dtype=object), return_inverse=True)

    weights = model._weights(encoded, train.published)
    flat = TextClassifier(half_life_days=None)._weights(encoded, train.published)

    age = (train.published.iloc[-1] - train.published.iloc[0]).days  # oldest first
    assert weights.mean() == pytest.approx(1.0)
    assert weights[0] / weights[-1] == pytest.approx(0.5 ** (age / 30) * flat[0] / flat[-1])
    with pytest.raises(ValueError, match="needs the papers' `published` dates"):
        model._weights(encoded, None)


def test_balanced_weights_give_every_class_the_same_total(train: pd.DataFrame) -> None:
    _, encoded = np.unique(train.label.to_numpy(dtype=object), return_inverse=True)
    assert len(set(np.bincount(encoded))) > 1  # the classes differ in size

    balanced = TextClassifier(class_weight="balanced")._weights(encoded, None)
    plain = TextClassifier(class_weight=None)._weights(encoded, None)

    totals = np.bincount(encoded, weights=balanced)
    np.testing.assert_allclose(totals, len(encoded) / len(totals))
    np.testing.assert_array_equal(plain, 1.0)


def test_fewer_than_three_categories_cannot_be_ranked(train: pd.DataFrame) -> None:
    two = train[train.label.isin(["cs.CL", "cs.CV"])]

    with pytest.raises(ValueError, match="at least 3 categories"):
        TextClassifier(**SMALL).fit(two, two.label)


def test_unknown_fields_and_class_weight_are_refused(train: pd.DataFrame) -> None:
    sample = train.iloc[::10]

    with pytest.raises(ValueError, match="unknown fields 'body'"):
        TextClassifier(fields="body", **SMALL).fit(sample, sample.label)
    with pytest.raises(ValueError, match="class_weight must be 'balanced' or null"):
        TextClassifier(class_weight="inverse", **SMALL).fit(sample, sample.label)


def test_an_unfitted_model_does_not_predict(held_out: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="not fitted"):
        TextClassifier(**SMALL).predict_proba(held_out)


def test_deepcopy_shares_the_fitted_model(model: TextClassifier) -> None:
    assert copy.deepcopy(model) is model
    assert copy.deepcopy({"classifier": model})["classifier"] is model


def test_pickle_round_trip_predicts_identically(
    model: TextClassifier, held_out: pd.DataFrame
) -> None:
    restored = pickle.loads(pickle.dumps(model))

    assert restored is not model
    pd.testing.assert_frame_equal(restored.predict_top3(held_out), model.predict_top3(held_out))


def test_check_input_names_what_is_wrong(held_out: pd.DataFrame) -> None:
    frame = held_out[["title", "abstract"]]

    assert check_input(frame) is frame
    with pytest.raises(TypeError, match="pandas DataFrame"):
        check_input(frame.to_dict("list"))
    with pytest.raises(ValueError, match=r"missing input columns \['abstract'\]"):
        check_input(frame[["title"]])
    with pytest.raises(ValueError, match=r"missing input columns \['title', 'abstract'\]"):
        check_input(held_out[["label"]])


# --- evaluation --------------------------------------------------------------------------

CLASSES = np.array(["a", "b", "c", "d"], dtype=object)
# predicted: a a b c a d; the true label is in the top 3 of every row but the fifth
PROBABILITIES = np.array(
    [
        [0.70, 0.20, 0.06, 0.04],
        [0.60, 0.30, 0.10, 0.00],
        [0.10, 0.80, 0.10, 0.00],
        [0.20, 0.30, 0.50, 0.00],
        [0.50, 0.30, 0.20, 0.00],
        [0.10, 0.20, 0.30, 0.40],
    ]
)
TRUTH = np.array(["a", "b", "b", "c", "d", "d"], dtype=object)


def test_evaluate_by_hand() -> None:
    result = evaluate(PROBABILITIES, CLASSES, TRUTH, min_class_support=2)

    metrics = result["metrics"]
    assert metrics["accuracy"] == pytest.approx(4 / 6)
    assert metrics["top3_accuracy"] == pytest.approx(5 / 6)
    # b and d have 2 papers each: F1 = 2 * 1 * 0.5 / 1.5 = 2/3 for both; a and c are left out
    assert metrics["macro_f1"] == pytest.approx(2 / 3)
    assert (metrics["papers"], metrics["macro_f1_classes"]) == (6, 2)
    assert result["per_class"]["a"] == pytest.approx(
        {"precision": 1 / 3, "recall": 1.0, "f1": 0.5, "support": 1}
    )
    assert result["per_class"]["c"] == pytest.approx(
        {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 1}
    )
    assert set(result["per_class"]) == set(CLASSES)


def test_evaluate_macro_f1_over_every_class_with_support_one() -> None:
    metrics = evaluate(PROBABILITIES, CLASSES, TRUTH, min_class_support=1)["metrics"]

    assert metrics["macro_f1"] == pytest.approx((0.5 + 2 / 3 + 1.0 + 2 / 3) / 4)
    assert metrics["macro_f1_classes"] == 4


def test_evaluate_reports_classes_only_seen_in_the_truth() -> None:
    truth = np.array(["a", "b", "b", "c", "e", "d"], dtype=object)  # "e" is not a class

    result = evaluate(PROBABILITIES, CLASSES, truth, min_class_support=1)

    assert result["per_class"]["e"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}


def test_expected_calibration_error() -> None:
    calibrated = np.array([[0.75, 0.25]] * 4)
    overconfident = np.array([[0.99, 0.01]] * 4)
    two_bins = np.array([[0.9, 0.1], [0.9, 0.1], [0.3, 0.7], [0.3, 0.7]])

    assert expected_calibration_error(calibrated, np.array([1, 1, 1, 0])) == pytest.approx(0)
    assert expected_calibration_error(overconfident, np.array([1, 0, 1, 0])) == pytest.approx(0.49)
    # confidences 0.9 (1 of 2 right: gap 0.4) and 0.7 (1 of 2 right: gap 0.2), half each
    assert expected_calibration_error(two_bins, np.array([1, 0, 0, 1])) == pytest.approx(0.3)


def test_evaluate_ece_is_zero_when_certain_and_right() -> None:
    probabilities = np.eye(4)[[0, 1, 2, 3, 3]]
    truth = CLASSES[[0, 1, 2, 3, 3]]

    metrics = evaluate(probabilities, CLASSES, truth, min_class_support=1)["metrics"]

    assert metrics["ece"] == 0
    assert metrics["accuracy"] == metrics["macro_f1"] == metrics["top3_accuracy"] == 1


def test_evaluate_refuses_an_empty_evaluation_set() -> None:
    with pytest.raises(ValueError, match="empty"):
        evaluate(np.empty((0, 4)), CLASSES, np.array([], dtype=object))


def test_a_naive_bayes_vote_shifts_the_probabilities(
    model: TextClassifier, train: pd.DataFrame, held_out: pd.DataFrame
) -> None:
    voted = TextClassifier(**SMALL | {"nb_weight": 0.3}).fit(train, train.label)
    majority = held_out.label.value_counts(normalize=True).max()

    probabilities = voted.predict_proba(held_out)

    assert voted.nb_log_prob_.shape == voted.coef_.shape
    assert model.nb_log_prob_ is None
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert np.abs(probabilities - model.predict_proba(held_out)).max() > 0.05
    assert accuracy(voted, held_out) > max(0.8, majority + 0.3)


def test_bounds_that_keep_no_ngram_are_refused(train: pd.DataFrame) -> None:
    sample = train.iloc[:30]

    with pytest.raises(ValueError, match=r"no n-gram is in at least min_df=50 .* of 30 papers"):
        TextClassifier(**SMALL | {"min_df": 50}).fit(sample, sample.label)


def test_a_category_the_stream_stopped_bringing_fades(
    train: pd.DataFrame, held_out: pd.DataFrame
) -> None:
    newest = train.published.max() - pd.Timedelta(days=30)
    stopped = train[(train.label != "cs.RO") | (train.published < newest)]
    plain = TextClassifier(**SMALL).fit(stopped, stopped.label)
    fading = TextClassifier(**SMALL | {"recent_days": 30}).fit(stopped, stopped.label)
    ro = list(fading.classes_).index("cs.RO")
    undamped = copy.copy(fading)
    undamped.log_fading_ = None

    p, q = undamped.predict_proba(held_out), fading.predict_proba(held_out)

    # cs.RO has no paper in the newest 30 days: scaled by FADED; no category is boosted
    assert fading.log_fading_[ro] == pytest.approx(np.log(0.01))
    assert fading.log_fading_.max() == 0 and np.delete(fading.log_fading_, ro).min() > -0.5
    expected = p * np.exp(fading.log_fading_)
    np.testing.assert_allclose(q, expected / expected.sum(axis=1, keepdims=True), atol=1e-4)
    assert (q.argmax(axis=1) == ro).sum() < 0.5 * (p.argmax(axis=1) == ro).sum()
    # the temperature was fitted with the damping, as it is applied
    assert fading.temperature_ != plain.temperature_
    with pytest.raises(ValueError, match="recent_days needs the papers' `published` dates"):
        fading.fit(stopped.drop(columns="published"), stopped.label)


def test_the_baseline_fits_one_multinomial_regression(
    train: pd.DataFrame, held_out: pd.DataFrame
) -> None:
    baseline = TextClassifier(**SMALL | {"multiclass": "multinomial", "C": 1.0})
    baseline.fit(train, train.label)
    majority = held_out.label.value_counts(normalize=True).max()

    probabilities = baseline.predict_proba(held_out)

    assert baseline.coef_.shape[1] == len(CATEGORIES)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert accuracy(baseline, held_out) > max(0.8, majority + 0.3)
    with pytest.raises(ValueError, match="unknown multiclass 'svm'"):
        TextClassifier(**SMALL | {"multiclass": "svm"}).fit(train, train.label)
