"""A job as its JSON object (`object: headway.job`): the body of `POST /v1/jobs`, of polling
`GET /v1/jobs/{id}`, and of the 202 a chat call gets when the degradation ladder queues it."""

from __future__ import annotations

from typing import Any

import orjson

from headway.degrade.codec import decode_response
from headway.degrade.jobs import Job


def job_json(job: Job) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": job.id,
        "object": "headway.job",
        "status": job.status,
        "model": job.model,
        "created_at": int(job.created_at),
        "attempts": job.attempts,
        "degraded": [d for d in job.degraded.split(",") if d],
        "result": None,
        "error": None,
    }
    if job.status == "succeeded" and job.result is not None:
        response = decode_response(job.result)
        if job.ingress == "anthropic":
            from headway.wire.anthropic.render import message_json

            out["result"] = message_json(response)
        else:
            from headway.wire.openai.ingress_encode import chat_response_json

            raw = chat_response_json(response, job.model, created=int(job.created_at))
            out["result"] = orjson.Fragment(raw)
    elif job.error is not None:
        out["error"] = {
            "message": job.error,
            "type": "job_failed" if job.status == "failed" else None,
        }
    return out


def job_headers(job_id: str) -> list[tuple[bytes, bytes]]:
    """`location` (where to poll) and `x-headway-job-id`, for every 202 that queued a job."""
    return [(b"location", f"/v1/jobs/{job_id}".encode()), (b"x-headway-job-id", job_id.encode())]
