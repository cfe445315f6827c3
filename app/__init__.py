"""CARL Studio's Streamlit app: a thin layer over ``carl_core``. Entry point: ``app/main.py``."""
