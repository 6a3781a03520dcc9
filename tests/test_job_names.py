"""The table of jobs by name (app.queues.JOBS): each name is a job function, and every job is named."""

import importlib
import inspect
import pkgutil

import app.jobs
from app.queues import JOBS


def _job_functions() -> dict[str, object]:
    """Every function of app/jobs wrapped by `job`, by dotted path."""
    found = {}
    for info in pkgutil.iter_modules(app.jobs.__path__, "app.jobs."):
        module = importlib.import_module(info.name)
        for name, value in inspect.getmembers(module, inspect.isfunction):
            if value.__module__ == module.__name__ and hasattr(value, "log"):
                found[f"{module.__name__}.{name}"] = value
    return found


def test_every_name_is_a_job_function():
    jobs = _job_functions()
    for name, path in JOBS.items():
        assert path in jobs, f"JOBS[{name!r}] = {path!r} is no job function of app/jobs"
        assert path.rsplit(".", 1)[1] == name


def test_every_job_function_has_a_name():
    assert sorted(_job_functions()) == sorted(JOBS.values())
