"""The paper classifier: model, evaluation, registry access."""
