"""Training nodes: the time split, evaluation outputs, the evaluation fingerprint, and the
champion gate against a real MLflow model registry."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from mlflow.tracking import MlflowClient
from mlflow.tracking._model_registry import utils as registry_utils
from mlflow.tracking._tracking_service import utils as tracking_utils

from arxiv_kedro.classification import registry
from arxiv_kedro.classification.evaluation import evaluate
from arxiv_kedro.classification.model import TextClassifier
from arxiv_kedro.pipelines.training.nodes import (
    count_ngrams,
    counts_of,
    decide_promotion,
    evaluate_classifier,
    evaluation_fingerprint,
    fit_classifier,
    fit_final_classifier,
    fit_holdout_classifier,
    label_set,
    predict,
    rolling_origin_evaluation,
    split_by_time,
)
from tests.classification.test_model import snapshot_papers

# cs.HC (~190 papers in the sample) stays below MIN_EXAMPLES training papers: out of the labels.
CATEGORIES = ("astro-ph.GA", "cs.CL", "cs.CV", "cs.RO", "cs.HC")
LABELS = ["astro-ph.GA", "cs.CL", "cs.CV", "cs.RO"]
MIN_EXAMPLES = 200
PARAMS = {
    "evaluation_fraction": 0.25,
    "min_examples": MIN_EXAMPLES,
    "min_class_support": 20,
    "candidate": "linear",
    "candidates": {
        "linear": {"min_df": 2, "n_jobs": 1},
        "baseline": {
            "fields": "joined",
            "min_df": 2,
            "n_jobs": 1,
            "calibration_fraction": 0,
            "multiclass": "multinomial",
        },
    },
    "rolling_origin": {"period": "M", "origins": 2, "horizon": 1},
    "gate": {
        "metric": "macro_f1",
        "min_improvement": 0.0,
        "top3_tolerance": 0.002,
        "ece_tolerance": 0.005,
        "min_papers": 50,
        "max_ece": 0.1,
    },
}


@pytest.fixture(scope="module")
def papers(daily_snapshot: Path) -> pd.DataFrame:
    return snapshot_papers(daily_snapshot, CATEGORIES)


@pytest.fixture(scope="module")
def split(papers: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    return split_by_time(papers, PARAMS)


@pytest.fixture(scope="module")
def holdout_model(split) -> TextClassifier:
    train, _, _ = split
    return TextClassifier(**PARAMS["candidates"]["linear"]).fit(train, train.label.tolist())


@pytest.fixture(scope="module")
def evaluated(holdout_model, split):
    _, evaluation, _ = split
    return evaluate_classifier(holdout_model, evaluation, PARAMS)


# --- split --------------------------------------------------------------------------------


def test_split_trains_on_older_days_than_it_evaluates(papers: pd.DataFrame, split) -> None:
    train, evaluation, summary = split

    last_training_day = train.published.dt.floor("D").max()
    first_evaluation_day = evaluation.published.dt.floor("D").min()
    assert last_training_day < first_evaluation_day
    assert summary["evaluation_from"] == f"{first_evaluation_day:%Y-%m-%d}"
    # no day is split: every paper of the first evaluation day is on the evaluation side
    day = papers[papers.published.dt.floor("D") == first_evaluation_day]
    assert set(day.arxiv_id[day.label.isin(LABELS)]) <= set(evaluation.arxiv_id)
    # about the newest quarter is held out
    assert 0.15 < len(evaluation) / (len(train) + len(evaluation)) < 0.35


def test_split_labels_are_categories_with_enough_training_papers(papers, split) -> None:
    train, evaluation, summary = split
    older = papers[
        papers.published.dt.floor("D") < pd.Timestamp(summary["evaluation_from"], tz="UTC")
    ]
    counts = older.label.value_counts()

    assert summary["labels"] == sorted(counts[counts >= MIN_EXAMPLES].index) == LABELS
    assert 0 < counts["cs.HC"] < MIN_EXAMPLES
    assert set(train.label) == set(LABELS)
    assert set(evaluation.label) <= set(LABELS)
    assert summary["train_papers"] == len(train)
    assert summary["evaluation_papers"] == len(evaluation)


def test_split_counts_the_papers_outside_the_labels(papers: pd.DataFrame, split) -> None:
    train, evaluation, summary = split
    rare = papers[papers.label == "cs.HC"]
    newer = rare.published.dt.floor("D") >= pd.Timestamp(summary["evaluation_from"], tz="UTC")

    assert summary["train_outside_labels"] == (~newer).sum() > 0
    assert summary["evaluation_outside_labels"] == newer.sum() > 0
    assert len(train) + len(evaluation) + len(rare) == len(papers)
    assert not set(rare.arxiv_id) & (set(train.arxiv_id) | set(evaluation.arxiv_id))


def test_split_needs_papers_of_more_than_one_day(papers: pd.DataFrame) -> None:
    one_day = papers[papers.published == papers.published.iloc[-1]]

    with pytest.raises(ValueError, match=r"cannot split .* by time at .*ingest papers from more"):
        split_by_time(one_day, PARAMS)


def test_split_needs_three_categories_with_enough_papers(papers: pd.DataFrame, split) -> None:
    train, _, _ = split
    third = int(train.label.value_counts().iloc[2])  # the third largest category

    with pytest.raises(ValueError, match=f"only 2 categories have ≥ {third + 1} training papers"):
        split_by_time(papers, PARAMS | {"min_examples": third + 1})
    assert len(split_by_time(papers, PARAMS | {"min_examples": third})[2]["labels"]) == 3
    with pytest.raises(ValueError, match="only 0 categories"):
        split_by_time(papers, PARAMS | {"min_examples": 10_000})


def test_label_set() -> None:
    labels = pd.Series(["b", "a", "b", "c", "a", "b"])

    assert label_set(labels, 2) == ["a", "b"]
    assert label_set(labels, 1) == ["a", "b", "c"]
    assert label_set(labels, 4) == []


def test_training_on_an_empty_store_says_to_ingest_first(papers: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="no papers: run the ingestion pipeline first"):
        split_by_time(papers.iloc[:0], PARAMS)


def test_final_classifier_learns_the_labels_of_the_whole_store(papers: pd.DataFrame) -> None:
    params = PARAMS | {"candidate": "baseline"}
    model = fit_final_classifier(papers, count_ngrams(papers, params), params)

    # cs.HC has < 200 papers in the whole sample too: not a label
    assert list(model.classes_) == label_set(papers.label, MIN_EXAMPLES) == LABELS


# --- candidates and the rolling origin -----------------------------------------------------


def test_the_candidate_parameter_chooses_the_recipe(split) -> None:
    train, _, _ = split
    sample = train.iloc[::3]

    baseline = fit_classifier(sample, PARAMS | {"candidate": "baseline"})

    assert (baseline.fields, baseline.calibration_fraction) == ("joined", 0)
    assert baseline.multiclass == "multinomial"
    assert list(baseline._terms) == ["text"]
    with pytest.raises(ValueError, match=r"unknown training.candidate 'svm': use one of "):
        fit_classifier(sample, PARAMS | {"candidate": "svm"})


@pytest.fixture(scope="module")
def counts(papers: pd.DataFrame) -> dict:
    return count_ngrams(papers, PARAMS)


def test_the_fits_take_their_papers_n_grams_from_the_counts_of_every_paper(
    papers, counts, split, holdout_model
) -> None:
    train, _, _ = split

    shared = fit_holdout_classifier(train, papers, counts, PARAMS)

    # the same n-grams, so the same model, as counting the training papers on their own
    own = holdout_model.counts(train)
    taken = counts_of(train, papers, counts)
    assert list(taken) == list(own)
    for name, block in own.items():
        assert (taken[name] != block).nnz == 0
    np.testing.assert_array_equal(shared.coef_, holdout_model.coef_)
    assert shared.temperature_ == holdout_model.temperature_
    # papers that were not counted (here: reindexed) are refused, not given another's n-grams
    with pytest.raises(ValueError, match="not among those whose n-grams were counted"):
        fit_holdout_classifier(train.set_axis(train.index + len(papers)), papers, counts, PARAMS)


@pytest.fixture(scope="module")
def rolling(papers: pd.DataFrame, counts: dict) -> tuple[dict, dict]:
    return rolling_origin_evaluation(papers, counts, PARAMS)


def test_rolling_origin_fits_on_earlier_months_and_evaluates_the_next(papers, rolling) -> None:
    metrics, report = rolling
    month = papers.published.dt.tz_localize(None).dt.to_period("M")
    newest = month.max()

    assert [o["origin"] for o in report["origins"]] == [str(newest - 1), str(newest)]
    for result in report["origins"]:
        origin = pd.Period(result["origin"])
        labels = label_set(papers.label[month < origin], MIN_EXAMPLES)
        assert len(labels) >= 3
        assert result["train_papers"] == (papers.label[month < origin].isin(labels)).sum()
        later = papers[month == origin]
        assert result["papers"] == later.label.isin(labels).sum() > 0
        # F1 of the categories macro-F1 averages: ≥ min_class_support papers in the period
        support = later.label[later.label.isin(labels)].value_counts()
        assert set(result["f1"]) == set(support[support >= PARAMS["min_class_support"]].index)
        assert 0.7 < result["accuracy"] <= result["top3_accuracy"] <= 1
    for name in ("accuracy", "macro_f1", "top3_accuracy", "ece"):
        per_origin = [o[name] for o in report["origins"]]
        assert report["metrics"][name] == pytest.approx(np.mean(per_origin))
        assert metrics[name] == {"value": report["metrics"][name], "step": 0}
        assert metrics[f"origin.{name}"] == [
            {"value": value, "step": i} for i, value in enumerate(per_origin)
        ]
    assert (report["candidate"], report["period"], report["horizon"]) == ("linear", "M", 1)
    assert set(report["mean_f1"]) == set().union(*(o["f1"] for o in report["origins"]))


def test_rolling_origin_needs_enough_earlier_papers(papers: pd.DataFrame, counts: dict) -> None:
    params = PARAMS | {"rolling_origin": {"period": "M", "origins": 12, "horizon": 1}}

    with pytest.raises(ValueError, match=r"only 0 categories have ≥ 200 earlier papers"):
        rolling_origin_evaluation(papers, counts, params)
    for no_papers in (
        lambda: count_ngrams(papers.iloc[:0], PARAMS),
        lambda: rolling_origin_evaluation(papers.iloc[:0], counts, PARAMS),
    ):
        with pytest.raises(ValueError, match="no papers: run the ingestion pipeline first"):
            no_papers()


# --- evaluation ---------------------------------------------------------------------------


def test_evaluate_classifier_returns_mlflow_metrics_report_and_figure(split, evaluated) -> None:
    _, evaluation, _ = split
    metrics, report, figure = evaluated

    names = {"accuracy", "macro_f1", "top3_accuracy", "ece", "papers", "macro_f1_classes"}
    assert set(metrics) == names | {"predict_papers_per_second"}
    for value in metrics.values():
        assert set(value) == {"value", "step"}
        assert isinstance(value["value"], float)
        assert value["step"] == 0
    assert {name: value["value"] for name, value in metrics.items()} == report["metrics"]
    assert metrics["papers"]["value"] == len(evaluation)
    assert metrics["macro_f1_classes"]["value"] == len(LABELS)
    assert metrics["predict_papers_per_second"]["value"] > 0
    assert 0.8 < metrics["accuracy"]["value"] <= metrics["top3_accuracy"]["value"] <= 1
    assert 0 <= metrics["ece"]["value"] < 0.2
    assert set(report["per_class"]) == set(LABELS)
    assert sum(c["support"] for c in report["per_class"].values()) == len(evaluation)
    assert isinstance(figure, Figure)
    [axes, _colorbar] = figure.axes
    assert [label.get_text() for label in axes.get_yticklabels()] == LABELS
    rows = axes.images[0].get_array()
    np.testing.assert_allclose(np.asarray(rows).sum(axis=1), 1.0)  # row-normalized


def test_predict_node_checks_its_input(holdout_model: TextClassifier, split) -> None:
    _, evaluation, _ = split

    top3 = predict(holdout_model, evaluation[["title", "abstract"]].head(5))

    assert list(top3.label) == list(holdout_model.predict_top3(evaluation.head(5)).label)
    with pytest.raises(ValueError, match="missing input columns"):
        predict(holdout_model, evaluation[["title"]])


# --- fingerprint --------------------------------------------------------------------------


def test_evaluation_fingerprint_identifies_papers_and_labels(split) -> None:
    _, evaluation, _ = split
    fingerprint = evaluation_fingerprint(evaluation)
    relabeled = evaluation.copy()
    relabeled.iloc[0, relabeled.columns.get_loc("label")] = "cs.XX"
    renamed = evaluation.copy()
    renamed.iloc[0, renamed.columns.get_loc("arxiv_id")] = "2599.99999"

    assert len(fingerprint) == 32
    assert evaluation_fingerprint(evaluation.sample(frac=1, random_state=1)) == fingerprint
    assert evaluation_fingerprint(evaluation.iloc[::-1].reset_index(drop=True)) == fingerprint
    assert evaluation_fingerprint(relabeled) != fingerprint
    assert evaluation_fingerprint(renamed) != fingerprint
    assert evaluation_fingerprint(evaluation.iloc[1:]) != fingerprint


# --- champion gate ------------------------------------------------------------------------


@contextmanager
def tracking_uri(uri: str) -> Iterator[str]:
    """MLFLOW_TRACKING_URI and mlflow's current tracking and registry URIs set to `uri` (the
    registry client prefers an already-set URI to the environment); all restored afterwards."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        patch.setenv("MLFLOW_REGISTRY_URI", uri)
        tracking, model_registry = tracking_utils._tracking_uri, registry_utils._registry_uri
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
        try:
            yield uri
        finally:
            mlflow.set_tracking_uri(tracking)
            mlflow.set_registry_uri(model_registry)


class Constant(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        return model_input


@pytest.fixture(scope="module")
def model_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowClient]:
    """A SQLite model registry with two versions of the classifier's name, neither champion."""
    directory = tmp_path_factory.mktemp("registry")
    with (
        tracking_uri(f"sqlite:///{directory / 'mlflow.db'}") as uri,
        pytest.MonkeyPatch.context() as patch,
    ):
        patch.chdir(directory)  # anything relative lands here, not in the repository
        client = MlflowClient(uri, uri)
        experiment = client.create_experiment("gate", str(directory / "artifacts"))
        for _ in range(2):
            with mlflow.start_run(experiment_id=experiment):
                mlflow.pyfunc.log_model(
                    name="model",
                    python_model=Constant(),
                    registered_model_name=registry.MODEL_NAME,
                    pip_requirements=[],
                )
        yield client


def make_champion(client: MlflowClient, version: int, tags: dict[str, str]) -> None:
    for key, value in tags.items():
        client.set_model_version_tag(registry.MODEL_NAME, str(version), key, value)
    client.set_registered_model_alias(registry.MODEL_NAME, registry.CHAMPION, str(version))


@pytest.fixture
def gate(model_registry: MlflowClient, holdout_model, split, evaluated, papers):
    """Runs `decide_promotion` on the real evaluation against a champion with given tags."""
    _, evaluation, _ = split
    _, report, _ = evaluated

    def decide(champion_tags: dict[str, str] | None, **gate_params) -> dict:
        client = model_registry
        for version in ("1", "2"):
            for key in client.get_model_version(registry.MODEL_NAME, version).tags:
                client.delete_model_version_tag(registry.MODEL_NAME, version, key)
        if champion_tags is None:
            client.delete_registered_model_alias(registry.MODEL_NAME, registry.CHAMPION)
        else:
            make_champion(client, 2, champion_tags)
        params = PARAMS | {"gate": PARAMS["gate"] | gate_params}
        return decide_promotion(
            holdout_model, evaluation, report, papers, registry.champion_version(), params
        )

    return decide


def champion_tags(
    fingerprint: str, macro_f1: float, trained_through: str, *, top3: float = 0.0, ece: float = 1.0
) -> dict[str, str]:
    """A champion's tags; by default its top-3 accuracy and ECE are as bad as can be."""
    return {
        "evaluation_fingerprint": fingerprint,
        "trained_through": trained_through,
        "evaluation.macro_f1": str(macro_f1),
        "evaluation.top3_accuracy": str(top3),
        "evaluation.ece": str(ece),
    }


def test_no_registry_means_no_champion_and_promotes(
    tmp_path: Path, holdout_model, split, evaluated, papers
) -> None:
    _, evaluation, _ = split
    _, report, _ = evaluated
    with tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}"):
        decision = decide_promotion(
            holdout_model, evaluation, report, papers, registry.champion_version(), PARAMS
        )

    assert decision["promote"] is True
    assert decision["reason"] == "no champion yet"
    assert decision["champion"] is decision["champion_version"] is None
    assert decision["registered_model_name"] == registry.MODEL_NAME
    assert decision["metric"] == "macro_f1"
    assert decision["candidate"] == report["metrics"]["macro_f1"]
    assert decision["evaluation"] == report["metrics"]
    assert decision["evaluation_fingerprint"] == evaluation_fingerprint(evaluation)
    assert decision["trained_through"] == papers.published.max().isoformat()


def test_looking_for_a_champion_creates_no_registry(tmp_path: Path) -> None:
    database = tmp_path / "mlflow.db"

    with tracking_uri(f"sqlite:///{database}"):
        assert registry.champion_version() is None

    assert not database.exists()


def test_a_registry_without_champion_promotes(gate, evaluated) -> None:
    decision = gate(None)

    assert decision["promote"] is True
    assert decision["reason"] == "no champion yet"


def test_a_better_champion_on_the_same_papers_stays(gate, split, evaluated) -> None:
    _, evaluation, _ = split
    candidate = evaluated[1]["metrics"]["macro_f1"]
    better = min(1.0, candidate + 0.05)

    decision = gate(champion_tags(evaluation_fingerprint(evaluation), better, "2025-01-01"))

    assert decision["promote"] is False
    assert decision["champion_version"] == "2"
    assert decision["champion"] == pytest.approx(better)
    assert decision["candidate"] == candidate
    assert "does not beat champion v2" in decision["reason"]
    assert "the champion's scores on the same evaluation papers" in decision["reason"]


def test_a_worse_champion_on_the_same_papers_is_replaced(gate, split, evaluated) -> None:
    _, evaluation, _ = split
    candidate = evaluated[1]["metrics"]["macro_f1"]

    decision = gate(champion_tags(evaluation_fingerprint(evaluation), candidate - 0.05, "2025"))

    assert decision["promote"] is True
    assert decision["champion"] == pytest.approx(candidate - 0.05)
    expected = f"macro_f1 {candidate:.4f} beats champion v2 {candidate - 0.05:.4f}"
    assert expected in decision["reason"]


def test_the_candidate_must_win_by_min_improvement(gate, split, evaluated) -> None:
    _, evaluation, _ = split
    candidate = evaluated[1]["metrics"]["macro_f1"]
    tags = champion_tags(evaluation_fingerprint(evaluation), candidate - 0.005, "2025")

    assert gate(tags, min_improvement=0.01)["promote"] is False
    assert gate(tags, min_improvement=0.001)["promote"] is True
    assert gate(tags | {"evaluation.macro_f1": str(candidate)})["promote"] is False  # a tie


def test_too_few_unseen_papers_keep_a_champion_evaluated_elsewhere(gate, papers) -> None:
    """Different evaluation data and a champion trained on everything: nothing to compare on."""
    newest = papers.published.max().isoformat()

    decision = gate(champion_tags("another evaluation", 0.0, newest))

    assert decision["promote"] is False
    assert decision["champion"] is None
    assert decision["reason"].startswith("only 0 evaluation papers are newer than the champion")
    assert "(need 50)" in decision["reason"]


def test_a_badly_calibrated_model_is_never_promoted(gate, evaluated) -> None:
    decision = gate(None, max_ece=0.0)  # no champion at all, and still not promoted

    assert decision["promote"] is False
    assert decision["reason"].startswith("ECE ") and "gate.max_ece" in decision["reason"]


def test_a_better_macro_f1_with_a_worse_top3_or_ece_is_not_promoted(gate, split, evaluated) -> None:
    _, evaluation, _ = split
    ours = evaluated[1]["metrics"]
    tags = champion_tags(
        evaluation_fingerprint(evaluation),
        ours["macro_f1"] - 0.05,
        "2025",
        top3=ours["top3_accuracy"],
        ece=ours["ece"],
    )

    assert gate(tags)["promote"] is True
    lower_top3 = gate(tags | {"evaluation.top3_accuracy": str(ours["top3_accuracy"] + 0.003)})
    higher_ece = gate(tags | {"evaluation.ece": str(ours["ece"] - 0.006)})
    tolerated = gate(
        tags
        | {"evaluation.top3_accuracy": str(ours["top3_accuracy"] + 0.001)}
        | {"evaluation.ece": str(ours["ece"] - 0.004)}
    )

    assert lower_top3["promote"] is False
    assert "top3_accuracy" in lower_top3["reason"]
    assert "is worse by more than gate.top3_tolerance 0.002" in lower_top3["reason"]
    assert "ece" in lower_top3["reason"] and "within tolerance" in lower_top3["reason"]
    assert higher_ece["promote"] is False
    assert "is worse by more than gate.ece_tolerance 0.005" in higher_ece["reason"]
    assert tolerated["promote"] is True
    assert "beats champion v2" in tolerated["reason"]
    assert tolerated["champion_scores"]["ece"] == pytest.approx(ours["ece"] - 0.004)
    assert tolerated["candidate_scores"] == {
        name: ours[name] for name in ("macro_f1", "top3_accuracy", "ece")
    }


def test_a_champion_evaluated_elsewhere_is_scored_on_the_same_unseen_papers(
    holdout_model, split, evaluated, papers
) -> None:
    """Different evaluation data: both models score the evaluation papers newer than the
    champion's training data, on all three figures."""
    train, evaluation, _ = split
    _, report, _ = evaluated
    older = train.iloc[: len(train) // 2]
    weaker = TextClassifier(**PARAMS["candidates"]["linear"]).fit(older, older.label)

    @dataclass(frozen=True)
    class Loaded(registry.RegisteredVersion):
        def load(self):  # the registry's loading is tested with real versions elsewhere
            return registry.Classifier(self.name, self.version, weaker)

    tags = {"evaluation_fingerprint": "another evaluation"}
    champion = Loaded(
        registry.MODEL_NAME, "7", tags | {"trained_through": "2025-01-01T00:00+00:00"}
    )
    decision = decide_promotion(holdout_model, evaluation, report, papers, champion, PARAMS)

    truth = evaluation.label.to_numpy(dtype=object)
    theirs = evaluate(weaker.predict_proba(evaluation), weaker.classes_, truth)["metrics"]
    assert decision["champion_scores"] == {
        name: pytest.approx(theirs[name]) for name in ("macro_f1", "top3_accuracy", "ece")
    }
    assert decision["candidate_scores"]["macro_f1"] == pytest.approx(report["metrics"]["macro_f1"])
    assert f"both scored on {len(evaluation):,} papers newer than" in decision["reason"]
    assert decision["promote"] is (
        decision["candidate"] > decision["champion"]
        and decision["candidate_scores"]["top3_accuracy"] >= theirs["top3_accuracy"] - 0.002
        and decision["candidate_scores"]["ece"] <= theirs["ece"] + 0.005
    )


def test_a_champion_saved_by_an_earlier_version_is_replaced(
    holdout_model, split, evaluated, papers
) -> None:
    _, evaluation, _ = split
    _, report, _ = evaluated
    old = TextClassifier.__new__(TextClassifier)  # what unpickling an earlier model gives
    old.__setstate__({k: v for k, v in holdout_model.__dict__.items() if k != "_terms"})

    @dataclass(frozen=True)
    class Loaded(registry.RegisteredVersion):
        def load(self):
            return registry.Classifier(self.name, self.version, old)

    tags = {"evaluation_fingerprint": "another", "trained_through": "2025-01-01T00:00+00:00"}
    champion = Loaded(registry.MODEL_NAME, "3", tags)
    decision = decide_promotion(holdout_model, evaluation, report, papers, champion, PARAMS)

    assert decision["promote"] is True
    assert decision["champion_version"] == "3"
    assert "champion v3: this model was saved by an earlier version" in decision["reason"]
