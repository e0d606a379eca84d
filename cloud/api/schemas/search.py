"""Schemas for search results."""

from __future__ import annotations

from cloud.api.schemas.common import PublicModel, UtcTime
from cloud.domain.search import SearchHit, SearchResults

__all__ = ["SearchHitPublic", "SearchResultsPublic"]


class SearchHitPublic(PublicModel):
    """One row found."""

    kind: str
    id: str
    title: str
    detail: str
    asset_id: str
    alert_id: int | None
    at: UtcTime | None

    @classmethod
    def of(cls, hit: SearchHit) -> SearchHitPublic:
        return cls(
            kind=hit.kind,
            id=hit.id,
            title=hit.title,
            detail=hit.detail,
            asset_id=hit.asset_id,
            alert_id=hit.alert_id,
            at=hit.at,
        )


class SearchResultsPublic(PublicModel):
    """Hits per kind (at most `limit` each) and how many matched per kind."""

    query: str
    terms: list[str]
    assets: list[SearchHitPublic]
    alerts: list[SearchHitPublic]
    work_orders: list[SearchHitPublic]
    cases: list[SearchHitPublic]
    totals: dict[str, int]

    @classmethod
    def of(cls, results: SearchResults) -> SearchResultsPublic:
        return cls(
            query=results.query,
            terms=list(results.terms),
            assets=[SearchHitPublic.of(h) for h in results.assets],
            alerts=[SearchHitPublic.of(h) for h in results.alerts],
            work_orders=[SearchHitPublic.of(h) for h in results.work_orders],
            cases=[SearchHitPublic.of(h) for h in results.cases],
            totals=dict(results.totals),
        )
