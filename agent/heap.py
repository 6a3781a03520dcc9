"""Keep what a long-lived process loads at start out of the garbage collector's full passes.

Used by the agent and by the panel's web and job workers (the panel depends on the agent package)."""

from __future__ import annotations

import gc


def freeze_loaded() -> int:
    """Collect once, then move every object alive now (modules, the app, SQLAlchemy's mappers,
    compiled templates: about 170,000 in a panel web worker) to the collector's permanent generation.

    They live as long as the process does; left in the oldest generation, every full collection
    walks them all again, a pause of 60-85 ms (measured on the panel's pages, bench/README.md) in
    whatever request or job triggered it; in an agent, one slow answer holds up a cluster-wide
    change. Returns how many objects are frozen.
    """
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
