"""Job endpoints, mounted into the server (headway.server.routes contract):

- `POST /v1/jobs`: a chat completion request (OpenAI shape, not streamed) queued at once;
  answers 202 with the job and `location: /v1/jobs/{id}`.
- `GET /v1/jobs/{id}`: the job's status, and once it succeeded its answer in the wire format it
  was asked in (a `chat.completion`, or an Anthropic `message`). A job is visible to its own tenant
  (and admins) only; anyone else gets 404.

The chat endpoints queue through the degradation ladder instead (`JobQueued`, also 202). The
worker starts with the server and runs jobs through the whole gateway pipeline.
"""

from __future__ import annotations

from headway.context import Call, Principal
from headway.degrade.jobs import Job
from headway.degrade.render import job_headers, job_json
from headway.degrade.stage import JOBS_EXTRA
from headway.degrade.worker import Jobs
from headway.errors import InvalidRequest, ModelNotFound, NotFound, PermissionDenied
from headway.server.calls import build_call
from headway.server.http import Request, Response, json_response
from headway.server.routes import Router, ServerContext
from headway.types import ChatResponse
from headway.wire.openai.ingress import parse_chat_request


def _visible(job: Job | None, principal: Principal) -> bool:
    return job is not None and (principal.is_admin or job.tenant == principal.tenant)


class JobRoutes:
    def __init__(self, server: ServerContext) -> None:
        self._server = server

    def _jobs(self) -> Jobs:
        jobs = self._server.gateway.services.extras.get(JOBS_EXTRA)
        if not isinstance(jobs, Jobs):
            raise NotFound("the job queue is not enabled (degrade.routes.*.steps: queue)")
        return jobs

    async def submit(self, req: Request) -> Response:
        jobs = self._jobs()
        request = parse_chat_request(req.json_object())
        if request.stream:
            raise InvalidRequest("a job cannot be streamed; poll it instead", param="stream")
        gateway = self._server.gateway
        if request.model not in gateway.runtime.public_models:
            raise ModelNotFound(f"The model `{request.model}` does not exist", param="model")
        allowed = req.principal.allowed_models
        if allowed is not None and request.model not in allowed:
            raise PermissionDenied(f"this key may not use model `{request.model}`", param="model")
        call = build_call(req, request, "openai")
        job = await jobs.submit(call)
        return json_response(job_json(job), 202, headers=job_headers(job.id))

    async def get(self, req: Request) -> Response:
        jobs = self._jobs()
        job = await jobs.queue.get(req.path_params["job_id"])
        if job is None or not _visible(job, req.principal):
            raise NotFound(f"no job {req.path_params['job_id']}", code="job_not_found")
        return json_response(job_json(job))


def mount(router: Router, server: ServerContext) -> None:
    routes = JobRoutes(server)
    router.post("/v1/jobs", routes.submit)
    router.get("/v1/jobs/{job_id}", routes.get)

    async def start() -> None:
        jobs = server.gateway.services.extras.get(JOBS_EXTRA)
        if isinstance(jobs, Jobs):

            async def run(call: Call) -> ChatResponse:
                return await server.gateway.chat(call=call)

            jobs.start(run)

    async def stop() -> None:
        jobs = server.gateway.services.extras.get(JOBS_EXTRA)
        if isinstance(jobs, Jobs):
            await jobs.stop()

    server.on_startup.append(start)
    server.on_shutdown.append(stop)
