"""What a caller may see: the whole fleet, or one customer's machines and what hangs off them.

A customer's token and portal session see only the assets on that customer's sites, and
the alerts, work orders and telemetry of those assets. An object outside the scope is
answered exactly like one that does not exist (NotFoundError with the same message), so a
customer cannot even learn that another customer's asset id exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from cloud.db.models import Alert, Asset, Site, WorkOrder
from cloud.domain.errors import NotFoundError

__all__ = ["FLEET", "Scope"]


@dataclass(frozen=True)
class Scope:
    """The fleet (`customer_id` None) or one customer's part of it."""

    customer_id: str | None = None

    @classmethod
    def of_customer(cls, customer_id: str | None) -> Scope:
        """One customer's scope; an unbound customer (no id) sees nothing at all."""
        # "" is no customer's id (ids start with a letter or digit): nothing matches it.
        return cls(customer_id=customer_id or "")

    @property
    def whole_fleet(self) -> bool:
        return self.customer_id is None

    def asset_ids(self) -> Select[str]:
        """A subquery of the asset ids in scope (every asset for the fleet)."""
        query = select(Asset.id)
        if self.customer_id is not None:
            query = query.join(Site, Asset.site_id == Site.id).where(
                Site.customer_id == self.customer_id
            )
        return query

    def where_asset(self, column: InstrumentedAttribute[Any]) -> ColumnElement[bool] | None:
        """A filter keeping rows whose asset-id column is in scope; None for the fleet."""
        return None if self.customer_id is None else column.in_(self.asset_ids())

    def restrict(self, query: Select[Any], column: InstrumentedAttribute[Any]) -> Select[Any]:
        """`query` limited to rows whose asset-id `column` is in scope."""
        condition = self.where_asset(column)
        return query if condition is None else query.where(condition)

    def sees(self, asset: Asset) -> bool:
        """Whether the asset is in scope."""
        return self.customer_id is None or (
            asset.site is not None and asset.site.customer_id == self.customer_id
        )

    def asset(self, session: Session, asset_id: str) -> Asset:
        """The asset if it exists and is in scope, else NotFoundError."""
        asset = session.get(Asset, asset_id)
        if asset is None or not self.sees(asset):
            raise NotFoundError(f"asset {asset_id} not found")
        return asset

    def alert(self, session: Session, alert_id: int) -> Alert:
        """The alert if it exists and its asset is in scope, else NotFoundError."""
        alert = session.get(Alert, alert_id)
        if alert is None or not self.sees(alert.asset):
            raise NotFoundError(f"alert {alert_id} not found")
        return alert

    def work_order(self, session: Session, work_order_id: int) -> WorkOrder:
        """The work order if it exists and its asset is in scope, else NotFoundError."""
        wo = session.get(WorkOrder, work_order_id)
        if wo is None or not self.sees(wo.asset):
            raise NotFoundError(f"work order {work_order_id} not found")
        return wo


FLEET = Scope()
