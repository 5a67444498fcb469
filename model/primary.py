"""The primary market: paid-share auctions of new quota, and the reserve pool's sales
and buy-backs.

- Paid share: in each of ``auction.months`` a uniform-price sealed-bid auction sells
  that auction's part of the year's paid share of quota (the rule quota at projected
  output x ``paid_share``), with ``auction.reserve_price`` and at most
  ``max_bid_share`` of the volume to one bidder. What is unsold is carried to the
  next auction, moved to the reserve pool or cancelled (``auction.unsold``).
- Bids: firms short over all open compliance years bid for their deficit at what they
  expect to pay on the exchange instead, plus the urgency premium, within their
  budget and never above the penalty price.
- Reserve pool: a policy's ``Intervention`` is carried out here: releases by the same
  auction (the pool's quota, vintage of the current year), buy-backs by a reverse
  auction among firms with a surplus, and intake withheld from the next issuance.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from etsim.model.auction import clear_reverse_auction, clear_uniform_price
from etsim.model.settlement import AUCTIONEER, RESERVE_POOL

if TYPE_CHECKING:  # annotations only
    from etsim.agents.population import FirmState
    from etsim.agents.positions import Positions
    from etsim.model.allocation import AllocationPolicy
    from etsim.model.records import FirmYears
    from etsim.model.registry import Registry
    from etsim.model.reserve import Intervention, ReservePool
    from etsim.model.scenario import Scenario
    from etsim.model.session import DailyRecord
    from etsim.model.settlement import TradeLog


class PrimaryMarket:
    """Auctions of new quota and of the reserve pool's quota, and buy-backs.

    Args:
        scenario: The resolved scenario (``auction``, ``trading``, ``end_year``).
        firms: The firms' state (``cash`` changes).
        records: The firm-year records (``auction_purchased``).
        registry: The quota registry (quota is issued to winners, taken from sellers).
        allocation: The allocation policy (paid shares and rule quota).
        reserve: The reserve pool.
        positions: The firms' positions and trading state (their bids and offers).
        record: The market's daily record (the day's primary price is kept).
        trade_log: Where auction and reserve trades are logged.
        payments: The run's money flows (the pool's purchases are added).
    """

    def __init__(self, scenario: Scenario, firms: FirmState, records: FirmYears,
                 registry: Registry, allocation: AllocationPolicy, reserve: ReservePool,
                 positions: Positions, record: DailyRecord, trade_log: TradeLog,
                 payments: dict[str, float]) -> None:
        self.auction = scenario.auction
        self.trading = scenario.trading
        self.end_year = scenario.end_year
        self.firms = firms
        self.records = records
        self.registry = registry
        self.allocation = allocation
        self.reserve = reserve
        self.positions = positions
        self.record = record
        self.trade_log = trade_log
        self.payments = payments
        self.unsold_carried = 0  # t left unsold at the last auction, offered at the next

    def bids(self, day: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Sealed bids of firms short of quota over all open compliance years: their
        deficit at what they expect to pay on the exchange instead, plus the urgency
        premium, within budget and at most the penalty price.

        Returns:
            Bidders' rows, tonnes and prices (CNY/t, to the fen).
        """
        state = self.positions.trading_state(day)
        position = self.positions.position_all_years()
        premium = self.trading.buyer_premium
        value = np.minimum(state.expected_price * (1 + premium * state.urgency),
                           state.penalty_price)
        wanted = np.floor(np.maximum(-position, 0.0))
        affordable = np.floor(np.maximum(state.budget, 0.0) / np.maximum(value, 0.01))
        quantity = np.minimum(wanted, affordable).astype(np.int64)
        bidders = np.flatnonzero(state.can_trade & (quantity > 0))
        return bidders, quantity[bidders], np.round(value[bidders], 2)

    def sell(self, day: int, year: int, volume: int, reserve_price: float, vintage: int,
             flow: str, counterparty: int) -> int:
        """Sell quota of ``vintage`` in a uniform-price auction; returns tonnes unsold.

        Args:
            day: The trading day.
            year: Its calendar year.
            volume: Tonnes offered.
            reserve_price: The lowest price accepted (CNY/t).
            vintage: Vintage of the quota sold.
            flow: Registry flow of the issuance (``auctioned`` or ``reserve_out``).
            counterparty: The seller in the trade log (``AUCTIONEER`` or ``RESERVE_POOL``).
        """
        bidders, quantity, prices = self.bids(day)
        max_share = self.auction.max_bid_share
        cap = None if max_share is None else max(1, int(max_share * volume))
        result = clear_uniform_price(quantity, prices, volume, reserve_price,
                                     max_per_bidder=cap, bidders=bidders)
        won = result.filled > 0
        winners, filled = bidders[won], result.filled[won]
        if len(winners):
            self.registry.issue(winners, filled, vintage, flow)
            if flow == "auctioned":
                self.records["auction_purchased"][winners, self.records.col(vintage)] += filled
            else:  # bought from the reserve pool: a purchase in the firm's net sales
                self.records["reserve_bought"][winners, self.records.col(year)] += filled
                self.firms.net_sales[winners] -= filled
            paid = filled * result.price
            self.firms.cash[winners] -= paid
            self.trade_log.log(day, year, winners, np.full(len(winners), counterparty),
                               result.price, filled,
                               "auction" if counterparty == AUCTIONEER else "reserve")
        if result.sold:
            self.record["primary_price"][day] = result.price
        return result.unsold

    def paid_share_auction(self, day: int, year: int, month: int) -> None:
        """Sell this auction's part of the year's paid share of quota."""
        auction = self.auction
        firms = self.firms
        allocation = self.allocation
        volume = 0.0
        for sector in range(len(allocation.sector_names)):
            share = allocation.paid_share(sector, year)
            rows = firms.sector_rows(sector, year)
            if share <= 0 or not len(rows):
                continue
            output = self.positions.projected_output(year, day)[rows]
            projected = output * firms.intensity[rows]
            volume += share * allocation.rule_quota(sector, year, output, projected).sum()
        volume = int(volume / len(auction.months)) + self.unsold_carried
        self.unsold_carried = 0
        if volume <= 0:
            return
        unsold = self.sell(day, year, volume, auction.reserve_price, year, "auctioned",
                           AUCTIONEER)
        if unsold:
            last_auction = year == self.end_year and month == auction.months[-1]
            rule = auction.unsold
            if rule == "carry" and not last_auction:
                self.unsold_carried = unsold
            elif rule == "reserve":
                self.reserve.add(year, unsold)
            # cancelled otherwise: it was never issued, so nothing is booked

    def release_from_reserve(self, day: int, year: int, volume: int,
                             reserve_price: float) -> None:
        """Release quota from the reserve pool by auction (vintage of the current year)."""
        vintage = min(year, self.end_year)
        volume = min(volume, self.reserve.holdings)
        if volume <= 0:
            return
        unsold = self.sell(day, year, volume, reserve_price, vintage, "reserve_out",
                           RESERVE_POOL)
        self.reserve.release(year, volume - unsold)

    def buy_back(self, day: int, year: int, volume: int, ceiling_price: float) -> None:
        """The pool buys quota back from firms with a surplus in a reverse auction."""
        state = self.positions.trading_state(day)
        offered = np.minimum(np.floor(np.maximum(state.position, 0)), state.sellable)
        sellers = np.flatnonzero(state.can_trade & (offered >= 1))
        if not len(sellers):
            return
        asks = np.round(state.expected_price[sellers] * (1 - self.trading.seller_discount), 2)
        result = clear_reverse_auction(offered[sellers].astype(np.int64), asks, volume,
                                       ceiling_price)
        won = result.filled > 0
        rows, filled = sellers[won], result.filled[won]
        if not len(rows):
            return
        self.registry.take(rows, filled, self.registry.vintages[-1], "reserve_in")
        self.records["reserve_sold"][rows, self.records.col(year)] += filled  # a sale in
        self.firms.net_sales[rows] += filled  # the firm's net sales
        self.firms.cash[rows] += filled * result.price
        self.payments["reserve_purchases"] += float((filled * result.price).sum())
        self.reserve.add_bought_back(year, int(filled.sum()))
        self.trade_log.log(day, year, np.full(len(rows), RESERVE_POOL), rows, result.price,
                           filled, "reserve")

    def carry_out(self, intervention: Intervention, day: int, year: int) -> None:
        """Do what a reserve policy decided: withhold, release, buy back."""
        if intervention.withhold:
            self.reserve.withhold_pending += intervention.withhold
        if intervention.release:
            self.release_from_reserve(day, year, intervention.release,
                                      intervention.release_price)
        if intervention.buy_back:
            self.buy_back(day, year, intervention.buy_back, intervention.buy_back_ceiling)
