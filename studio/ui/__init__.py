"""Widgets only: the main window, workspaces and dialogs. Never imports torch; talks to models via the engine."""
