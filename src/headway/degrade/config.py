"""Config section `degrade`: the degradation ladder per route, and the job queue behind it.

    degrade:
      enabled: true
      routes:
        default:
          steps: [stale_cache, substitute, static, queue]   # tried in this order
          substitute: sim-small                              # a deployment or route alias
          static_file: answers.yaml                          # prompt -> answer
          static_default: "We are having trouble right now; please try again shortly."
      queue: {backend: sqlite, sqlite_path: headway-jobs.db, job_deadline_s: 3600}

Owned by the degrade package; the root schema (headway.config.schema) only references it.
Cross references (route names, the substitute model, the static file) are checked when the stage
is built, with errors naming the path (`degrade.routes.default.substitute`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from headway.config.base import StrictModel

Step = Literal["stale_cache", "substitute", "static", "queue"]

ALL_STEPS: tuple[Step, ...] = ("stale_cache", "substitute", "static", "queue")


class LadderConfig(StrictModel):
    steps: list[Step] = Field(default_factory=lambda: list(ALL_STEPS))
    #: a smaller model (deployment or route alias) to answer when the route's chain failed
    substitute: str | None = None
    #: YAML/JSON file of static answers matched on the normalised prompt
    static_file: str | None = None
    #: the same, inline
    static_answers: dict[str, str] = Field(default_factory=dict)
    #: answer given when no static answer matches (None: the static step only answers matches)
    static_default: str | None = None
    #: serve stale answers no older than this (None: whatever the cache keeps)
    stale_max_age_s: float | None = Field(default=None, gt=0)

    @field_validator("steps")
    @classmethod
    def _unique(cls, steps: list[Step]) -> list[Step]:
        if len(set(steps)) != len(steps):
            raise ValueError("each step may appear once")
        return steps


class QueueConfig(StrictModel):
    backend: Literal["memory", "sqlite"] = "sqlite"
    sqlite_path: str = "headway-jobs.db"
    #: a queued call is retried until this long after it was queued, then fails
    job_deadline_s: float = Field(default=3600.0, gt=0)
    retry_base_s: float = Field(default=5.0, ge=0)
    retry_max_s: float = Field(default=300.0, ge=0)
    #: how often an idle worker looks for due jobs
    poll_s: float = Field(default=1.0, gt=0)
    #: a running job whose worker vanished (crash, restart) is run again after this
    lease_s: float = Field(default=600.0, gt=0)
    #: jobs run at once per worker process
    concurrency: int = Field(default=4, ge=1)
    #: finished jobs stay pollable this long
    keep_s: float = Field(default=86400.0, gt=0)


class DegradeConfig(StrictModel):
    enabled: bool = False
    #: ladders by route alias (or deployment name)
    routes: dict[str, LadderConfig] = Field(default_factory=dict)
    #: the ladder for every other route (None: those routes do not degrade)
    default: LadderConfig | None = None
    queue: QueueConfig = Field(default_factory=QueueConfig)
