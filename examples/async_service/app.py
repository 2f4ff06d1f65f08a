"""An asyncio web service (FastAPI) writing the go_partman guide's convoy events, with partman
keeping its partitioned tables covered ahead and trimmed behind.

partman's whole part is `partman.toml` beside this file and the one `maintenance(...)` line in
`lifespan` below: no partman code. Run it with

    DATABASE_URL=postgresql://user@host/db \\
        uvicorn app:app --app-dir examples/async_service

POST /projects/{uid} signs up a project (the next pass gives it partitions), POST
/projects/{uid}/events writes an event into today's partition, GET /partitions shows what
partman keeps.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from psycopg_pool import AsyncConnectionPool

from partman.contrib.asgi import maintenance

HERE = Path(__file__).resolve().parent


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    async with AsyncConnectionPool(
        os.environ["DATABASE_URL"], min_size=1, max_size=4, open=False
    ) as pool:
        async with pool.connection() as conn:
            await conn.execute((HERE / "schema.sql").read_text(encoding="utf-8"))
        app.state.pool = pool
        async with maintenance(HERE / "partman.toml") as partman:
            app.state.partman = partman
            yield


app = FastAPI(title="convoy", lifespan=lifespan)


@app.post("/projects/{uid}")
async def sign_up(uid: str, request: Request) -> dict[str, Any]:
    async with request.app.state.pool.connection() as conn:
        await conn.execute(
            "INSERT INTO convoy.projects (uid, name) VALUES (%s, %s) ON CONFLICT DO NOTHING",
            (uid, uid),
        )
    return {"project": uid}


@app.post("/projects/{uid}/events")
async def create_event(uid: str, request: Request) -> dict[str, Any]:
    body = await request.json()
    async with request.app.state.pool.connection() as conn:
        cur = await conn.execute(
            "INSERT INTO convoy.events (project_id, event_type) VALUES (%s, %s) "
            "RETURNING id, tableoid::regclass::text",
            (uid, body.get("event_type", "ping")),
        )
        row = await cur.fetchone()
    assert row is not None
    return {"id": row[0], "partition": row[1]}


@app.get("/partitions")
async def partitions(request: Request) -> list[dict[str, Any]]:
    found = await request.app.state.partman.inventory()
    return [c.to_dict() for c in found.coverage]
