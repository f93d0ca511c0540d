"""The bridge between the UI and the models: QtCore only, hands the UI plain data."""
