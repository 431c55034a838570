"""The bare anchor of `bench.http_read`: the least FastAPI can do for a cached user read.

PyJWT HS256 verify of the bearer token, one Redis GET, the stored bytes returned as they
are. No erased-user check, no cache epoch, no lease, no validation, no middleware: the
floor a cached `GET /api/users/{id}` is measured against. Served by
`uvicorn bench.bare_read:app --workers 2 --loop uvloop --http httptools`, configured by
`BARE_SECRET`, `BARE_REDIS_URL` and `BARE_PREFIX` (the value of user `id` is at
`<prefix><id>`).
"""

from __future__ import annotations

import os

import jwt
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from redis.asyncio import Redis

SECRET = os.environ.get("BARE_SECRET", "")
PREFIX = os.environ.get("BARE_PREFIX", "bare:user:")
redis = Redis.from_url(os.environ.get("BARE_REDIS_URL", "redis://127.0.0.1:6379/0"))
app = FastAPI()


@app.get("/api/users/{user_id}")
async def get_user(user_id: str, request: Request) -> Response:
    _, _, token = request.headers.get("authorization", "").partition(" ")
    try:
        jwt.decode(token, SECRET, algorithms=["HS256"])
    except jwt.InvalidTokenError:
        return JSONResponse({"error": {"code": "unauthorized"}}, status_code=401)
    stored = await redis.get(PREFIX + user_id)
    if stored is None:
        return JSONResponse({"error": {"code": "not_found"}}, status_code=404)
    return Response(stored, media_type="application/json")
