"""A test double for the sweep tests (a plain helper module, not a test file): a model
whose run fails at one point of the grid, to check that a sweep records the failure and
goes on. Tests import it as ``from sweep_doubles import ...`` (pytest puts ``tests/`` on
``sys.path``)."""

from __future__ import annotations

import etsim.experiments.sweep as sweep

FAILING_MULTIPLE = 10  # the penalty.multiple whose runs fail
FAILURE = f"boom at multiple {FAILING_MULTIPLE}"


class FailingAtOneMultiple(sweep.CarbonMarketModel):
    """The model, except that a run with ``penalty.multiple`` = ``FAILING_MULTIPLE``
    raises ``RuntimeError(FAILURE)`` (set it as ``sweep.CarbonMarketModel``)."""

    def run(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN201
        if self.scenario.penalty.multiple == FAILING_MULTIPLE:
            raise RuntimeError(FAILURE)
        return super().run(*args, **kwargs)
