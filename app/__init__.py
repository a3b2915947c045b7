"""The Streamlit UI: it reads and classifies papers through the REST API only."""
