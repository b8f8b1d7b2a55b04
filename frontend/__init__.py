"""The Streamlit support chat: `streamlit run frontend/app.py` (see docs/frontend.md)."""
