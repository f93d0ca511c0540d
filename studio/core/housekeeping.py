"""Start-up tidying after a crash: temporary files and half-swapped folders that killed writers left behind.

Studio's own folders (settings, data, caches) are swept for the temporary names :mod:`studio.core.safe_write` uses
and for those of earlier versions; the output and shared model folders only for the former, so no file of the
user's is ever touched. Temporaries of a writer that is still running (another Studio process) are left alone.
"""

from __future__ import annotations

import logging
from pathlib import Path

from studio.core import paths
from studio.core.safe_write import remove_stale_temps
from studio.core.settings import load_settings

log = logging.getLogger(__name__)


def tidy_after_crashes() -> list[Path]:
    """Remove what interrupted writes left behind; returns the paths removed or restored."""
    settings = load_settings()
    own = [paths.config_dir(), paths.data_dir(), paths.cache_dir()]
    theirs = [settings.resolved_output_dir, *([Path(settings.shared_model_dir).expanduser()]
                                              if settings.shared_model_dir else [])]
    done = remove_stale_temps(own, legacy=True) + remove_stale_temps(theirs)
    for path in done:
        log.info("removed what an interrupted write left behind: %s", path)
    return done
