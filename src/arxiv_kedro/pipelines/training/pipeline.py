"""The training pipeline, wrapped by kedro-mlflow so that the model carries its inference step."""

from importlib.metadata import version

from kedro.pipeline import Node, Pipeline
from kedro_mlflow.pipeline import pipeline_ml_factory
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, Schema

from arxiv_kedro.classification import INPUT_COLUMNS, OUTPUT_COLUMNS
from arxiv_kedro.classification.registry import MODEL_NAME
from arxiv_kedro.pipelines.training.nodes import (
    count_ngrams,
    decide_promotion,
    evaluate_classifier,
    fit_final_classifier,
    fit_holdout_classifier,
    predict,
    rolling_origin_evaluation,
    split_by_time,
)

SIGNATURE = ModelSignature(
    inputs=Schema([ColSpec("string", column) for column in INPUT_COLUMNS]),
    outputs=Schema(
        [ColSpec("string" if c.startswith("label") else "double", c) for c in OUTPUT_COLUMNS]
    ),
)
INPUT_EXAMPLE = {
    "title": ["Attention is all you need"],
    "abstract": [
        "The dominant sequence transduction models are based on complex recurrent or "
        "convolutional neural networks. We propose a new simple network architecture, the "
        "Transformer, based solely on attention mechanisms."
    ],
}
# What the logged model needs besides this project's own package (installed with it).
PIP_REQUIREMENTS = [
    f"{name}=={version(name)}"
    for name in ("kedro", "kedro-mlflow", "mlflow", "scikit-learn", "pandas", "numpy", "scipy")
]


def create_training_pipeline() -> Pipeline:
    return Pipeline(
        [
            Node(
                split_by_time,
                ["papers@labeled", "params:training"],
                ["training_papers", "evaluation_papers", "training_split"],
                name="split_by_time",
            ),
            Node(
                count_ngrams,
                ["papers@labeled", "params:training"],
                "ngram_counts",
                name="count_ngrams",
            ),
            Node(
                fit_holdout_classifier,
                ["training_papers", "papers@labeled", "ngram_counts", "params:training"],
                "holdout_classifier",
                name="fit_holdout_classifier",
            ),
            Node(
                evaluate_classifier,
                ["holdout_classifier", "evaluation_papers", "params:training"],
                ["evaluation_metrics", "evaluation_report", "confusion_matrix"],
                name="evaluate_classifier",
            ),
            Node(
                rolling_origin_evaluation,
                ["papers@labeled", "ngram_counts", "params:training"],
                ["rolling_origin_metrics", "rolling_origin_report"],
                name="rolling_origin_evaluation",
            ),
            Node(
                fit_final_classifier,
                ["papers@labeled", "ngram_counts", "params:training"],
                "classifier",
                name="fit_final_classifier",
            ),
            Node(
                decide_promotion,
                [
                    "holdout_classifier",
                    "evaluation_papers",
                    "evaluation_report",
                    "papers@labeled",
                    "champion",
                    "params:training",
                ],
                "champion_decision",
                name="decide_promotion",
            ),
        ],
        tags=["training"],
    )


def create_pipeline(**kwargs) -> Pipeline:
    inference = Pipeline(
        [Node(predict, ["classifier", "instances"], "predictions", name="predict")]
    )
    return pipeline_ml_factory(
        training=create_training_pipeline(),
        inference=inference,
        input_name="instances",
        log_model_kwargs={
            "name": "model",
            "registered_model_name": MODEL_NAME,
            "signature": SIGNATURE,
            "input_example": INPUT_EXAMPLE,
            "pip_requirements": PIP_REQUIREMENTS,
        },
    )
