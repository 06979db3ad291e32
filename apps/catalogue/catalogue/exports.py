"""The catalogue export: a long job started from the UI.

``POST /api/exports`` stores an export row and enqueues
:meth:`catalogue.jobs.Exporter.export`; ``GET /api/exports/{id}``
reports its status and progress (the page polls it); the file is
downloaded from ``/api/exports/{id}/file`` once the export is done.
Only the user who started an export sees it.

The job reports its progress through backburner's job context
(``context.report_progress``); this API reads it back with
``client.get_progress`` for exports still running, and the dashboard
shows the same value as a bar.
"""

from __future__ import annotations

import secrets
from typing import Any

from fastapi import APIRouter
from fastapi.responses import FileResponse
from sqlalchemy import select

from backburner import CancellationToken
from backburner.jobs import JobId
from backburner.web.fastapi import RequestCancellation
from catalogue.errors import ApiError, not_found
from catalogue.identity import CurrentUser, ServicesDep
from catalogue.jobs import Exporter
from catalogue.models import Export, utc_now
from catalogue.services import Services

__all__ = ["router"]

router = APIRouter(prefix="/api/exports", tags=["exports"])


async def export_view(services: Services, export: Export) -> dict[str, Any]:
    """What the API shows of an export, with its job's latest progress."""
    done = export.status == "done"
    percent, message = (100, "") if done else (0, "")
    if not done and export.job_id is not None:
        progress = await services.client.get_progress(
            JobId(int(export.job_id))
        )
        if progress is not None:
            percent, message = int(progress.percent), progress.message
    return {
        "id": export.id,
        "status": export.status,
        "progress": percent,
        "message": message,
        "rows": export.rows,
        "job_id": export.job_id,
        "created_at": export.created_at.isoformat() + "Z",
        "download": f"/api/exports/{export.id}/file" if done else None,
    }


@router.post("", status_code=202)
async def start_export(
    user: CurrentUser, services: ServicesDep, token: RequestCancellation
) -> dict[str, Any]:
    """Start exporting the catalogue as CSV."""
    token.raise_if_cancellation_requested()
    export = Export(
        id=secrets.token_hex(8),
        user_id=user.id,
        status="queued",
        progress=0,
        rows=0,
        created_at=utc_now(),
    )
    # Once started, the export and its job exist together, whether or
    # not the browser waits for the answer.
    async with services.db.writing() as session:
        session.add(export)
        await session.commit()
        job_id = await services.client.enqueue(Exporter.export, export.id)
        export.job_id = str(job_id)
        await session.commit()
    return await export_view(services, export)


async def _own_export(
    services: Services,
    token: CancellationToken,
    user_id: int,
    export_id: str,
) -> Export:
    async with services.db.session(token) as session:
        export = await session.get(Export, export_id)
    if export is None or export.user_id != user_id:
        raise not_found("export")
    return export


@router.get("")
async def list_exports(
    user: CurrentUser, services: ServicesDep, token: RequestCancellation
) -> list[dict[str, Any]]:
    """The user's exports, newest first."""
    query = (
        select(Export)
        .where(Export.user_id == user.id)
        .order_by(Export.created_at.desc())
        .limit(20)
    )
    async with services.db.session(token) as session:
        exports = (await session.scalars(query)).all()
    return [await export_view(services, export) for export in exports]


@router.get("/{export_id}")
async def get_export(
    export_id: str,
    user: CurrentUser,
    services: ServicesDep,
    token: RequestCancellation,
) -> dict[str, Any]:
    """One export's status and progress."""
    export = await _own_export(services, token, user.id, export_id)
    return await export_view(services, export)


@router.get("/{export_id}/file")
async def download_export(
    export_id: str,
    user: CurrentUser,
    services: ServicesDep,
    token: RequestCancellation,
) -> FileResponse:
    """The finished CSV file."""
    export = await _own_export(services, token, user.id, export_id)
    if export.status != "done":
        raise ApiError(409, "the export is not finished yet")
    path = services.settings.exports_dir / f"{export.id}.csv"
    if not path.is_file():
        raise not_found("export file")
    return FileResponse(
        path, media_type="text/csv", filename=f"catalogue-{export.id}.csv"
    )
