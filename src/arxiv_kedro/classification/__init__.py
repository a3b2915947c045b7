"""The paper classifier: model, evaluation, registry access — and its contract, here so that what
stores predictions need not import the model's libraries."""

# The model takes these text columns and answers, per paper, the top label and its probability,
# then the runners-up (the pyfunc contract, and the `predictions` table's columns).
INPUT_COLUMNS = ("title", "abstract")
OUTPUT_COLUMNS = ("label", "probability", "label_2", "probability_2", "label_3", "probability_3")
