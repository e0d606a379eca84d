"""The insight pages on one router: KPIs (`/kpis`), operating reports (`/reports`) and
the fault case library (`/cases`)."""

from __future__ import annotations

from fastapi import APIRouter

from cloud.dashboard._kit import PageKit
from cloud.dashboard._pages_cases import build_router as case_pages
from cloud.dashboard._pages_kpis import build_router as kpi_pages
from cloud.dashboard._pages_reports import build_router as report_pages

__all__ = ["build_router"]


def build_router(kit: PageKit) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    for pages in (kpi_pages, report_pages, case_pages):
        router.include_router(pages(kit))
    return router
