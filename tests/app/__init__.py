"""Tests of the Streamlit UI (app/)."""
