"""The market and its institutions (``etsim.model``): scenario schema, allocation,
registry, compliance, MRV, primary market, reserve pool, trading session, exchange,
equilibrium, results, and the Mesa model (``market.py``) whose schedule calls them.

Nothing is imported here, so ``import etsim.model.exchange`` loads the exchange alone;
the public names are in the ``etsim`` package (``from etsim import CarbonMarketModel``).
"""
