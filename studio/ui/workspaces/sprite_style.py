"""Style rules of the Sprites workspace, on top of the application theme (resources/style.qss)."""

ERROR_COLOR = "#ff7b72"

STYLE = """
#resultsGrid { background: #15171c; border: none; }
#resultsGrid::item { color: #8b93a3; border-radius: 6px; }
#resultsGrid::item:selected { background: #2a3350; border: 2px solid #5c7cfa; color: #ffffff; }
#toolColumn { background: #1f232a; border-right: 1px solid #2a2e36; }
#toolColumn QToolButton { background: transparent; border: 1px solid transparent; border-radius: 6px;
    padding: 4px; }
#toolColumn QToolButton:hover { border-color: #4a5262; }
#toolColumn QToolButton:checked { background: #2a3350; border-color: #5c7cfa; }
"""
