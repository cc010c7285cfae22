"""Fine-tuning tools: start, follow, cancel and resume QLoRA jobs (adapters: ``tools.adapters``)."""

from __future__ import annotations

import base64
import json
from typing import Annotated, Any, Literal

import anyio.from_thread
import anyio.to_thread
from mcp.server.mcpserver import Context, MCPServer
from mcp_types import CallToolResult, ContentBlock, ImageContent, TextContent
from pydantic import BaseModel, Field

from llm_engineering.adapters.defaults import auto_names
from llm_engineering.adapters.job_view import JobView
from llm_engineering.adapters.service import TrainingService
from llm_engineering.tools.adapters import DamagedInfo
from llm_engineering.tools.common import app_of, tool_hints, user_errors

__all__ = ["JobInfo", "register"]


class JobInfo(BaseModel):
    job_id: str
    name: str = Field(description="The adapter name the job trains.")
    status: str = Field(
        description="validating, queued, running, succeeded, failed, cancelled or interrupted."
    )
    step: int = Field(description="Optimizer steps done.")
    total: int = Field(description="Optimizer steps planned (0 until the worker has started).")
    loss: float | None = Field(
        description="Training loss at the latest step while the job runs; once it has "
        "succeeded, the final loss (mean over the last epoch), as the adapter's card."
    )
    learning_rate: float | None
    tokens_per_s: float | None = Field(description="Training throughput of the current run.")
    eta_s: float | None = Field(description="Seconds left, estimated; null once it has ended.")
    stage: str = Field(description="The worker's latest event (loading, started, step, ...).")
    base_model: str
    examples: int
    dataset_sha256: str | None
    attempts: int = Field(description="Worker runs so far (more than 1 = resumed).")
    created: float
    started: float | None
    finished: float | None
    adapter: str | None = Field(description="NAME@VERSION registered when it succeeded.")
    error: str | None = Field(description="Why it failed or stopped (or a note on success).")
    final_loss: float | None = Field(default=None, description="Mean loss over the last epoch.")
    first_loss: float | None = Field(default=None, description="Mean loss over the first epoch.")
    loss_plot: str | None = Field(default=None, description="Path of loss.png, once written.")
    hyperparameters: dict[str, Any] | None = Field(
        default=None,
        description="What it trains with, chosen values included (once the model has loaded).",
    )
    chosen: dict[str, str] = Field(
        default_factory=dict, description="Hyperparameters chosen, not given, and why."
    )
    eval_examples: int = Field(default=0, description="Examples held out to check the adapter.")
    eval_loss: float | None = Field(default=None, description="Latest loss on held-out examples.")
    answer_check: dict[str, Any] | None = Field(
        default=None,
        description="heldout / train: greedy answers vs references (exact, token F1, samples).",
    )
    kept_check: dict[str, Any] | None = Field(
        default=None,
        description="The packaged general prompts answered by the base and the adapter: kept "
        "(share answered as the base does), leaked (share naming the training answers' "
        "distinctive words), names, samples. Under 0.8 kept, the job's error carries a note.",
    )
    replayed: int | None = Field(
        default=None,
        description="General examples (the base's own answers) trained with the data.",
    )
    events: list[dict[str, Any]] = Field(
        default_factory=list, description="The latest events from the worker."
    )
    damaged: DamagedInfo | None = Field(
        default=None,
        description="Set when the job's job.json cannot be read (its path and why); the rest "
        "of what is known of the job is still given.",
    )
    kind: str = Field(
        default="qlora",
        description="qlora (an adapter) or retrieval (the embedding model, start_retrieval_tuning).",
    )
    tuning: dict[str, Any] | None = Field(
        default=None,
        description="A retrieval job's decision once it ended: status (switched or kept), reason, "
        "scores of the live and the tuned index on held-out pairs (nDCG@10, R@10), training, shadow build.",
    )

    @classmethod
    def of(cls, view: JobView, events: bool = True) -> JobInfo:
        job, result = view.job, view.result
        return cls(
            job_id=job.id,
            name=job.name,
            status=job.status,
            step=view.step,
            total=view.total,
            loss=view.loss,
            learning_rate=view.learning_rate,
            tokens_per_s=view.tokens_per_s,
            eta_s=view.eta_s,
            stage=view.stage,
            base_model=job.base_model,
            examples=job.examples,
            dataset_sha256=job.dataset_sha256,
            attempts=job.attempts,
            created=job.created,
            started=job.started,
            finished=job.finished,
            adapter=job.adapter,
            error=job.error,
            final_loss=result.final_loss if result else None,
            first_loss=result.first_loss if result else None,
            loss_plot=str(view.loss_plot) if view.loss_plot else None,
            hyperparameters=(result.hyperparameters if result else None) or view.hyperparameters,
            chosen=(result.chosen if result else None) or view.chosen,
            eval_examples=view.spec.eval_examples if view.spec else 0,
            eval_loss=(result.eval_loss if result else None) or view.eval_loss,
            answer_check=result.answer_check if result else None,
            kept_check=result.kept_check if result else None,
            replayed=result.replayed if result else None,
            events=view.events if events else [],
            damaged=DamagedInfo.of(view.damaged) if view.damaged else None,
            kind=job.kind,
            tuning=view.tuning,
        )


class StartedJob(BaseModel):
    job_id: str
    status: str = Field(description="queued: it trains in the background; follow it with get_job.")
    examples: int = Field(description="Examples that passed validation (held-out ones included).")
    dataset_sha256: str | None
    base_model: str
    hyperparameters: dict[str, Any] = Field(
        description="Every hyperparameter; those in `auto` are chosen when the model loads."
    )
    auto: list[str] = Field(
        description="Hyperparameters not given: chosen from the base model's and the dataset's "
        "size when the model loads (get_job shows the values and why)."
    )
    eval_examples: int = Field(description="Examples held out to check what the adapter learned.")
    planned_steps: int = Field(description="Optimizer steps the job will make.")
    estimated_minutes: float | None = Field(
        description="Training time at the rate a job on this base measured here; null while "
        "no job on it has (estimate says so)."
    )
    estimate: str = Field(description="How the estimate was reached, in words.")
    runs_here: bool = Field(
        description="Whether this server runs jobs; false = another copy of the server (or llm-eng train) does."
    )


class JobList(BaseModel):
    jobs: list[JobInfo]


@user_errors
async def start_qlora_job(
    ctx: Context,
    adapter_name: Annotated[
        str, Field(description="Name to register the adapter under (letters, digits, . _ -).")
    ],
    dataset_path: Annotated[
        str | None,
        Field(
            description="Absolute path of a JSONL file inside a watched folder or the data dir: "
            "chat {messages}, alpaca {instruction,input,output}, {prompt,completion} or {text} per line."
        ),
    ] = None,
    records: Annotated[
        list[dict[str, Any]] | None,
        Field(
            description="The examples inline instead of dataset_path, in any of the same shapes."
        ),
    ] = None,
    base_model: Annotated[
        str | None,
        Field(
            description="A GGUF (name or path) or an HF model path/id; default: the model that answers."
        ),
    ] = None,
    hyperparameters: Annotated[
        dict[str, Any] | None,
        Field(
            description="Overrides: r, lora_alpha, lora_dropout, learning_rate, epochs, max_steps, "
            "max_minutes, batch_size, max_seq_len, checkpoint_every, eval_fraction, eval_every, ... "
            "(unknown names are refused). Not given: learning_rate and the number of steps are "
            "chosen from the base model's and the dataset's size."
        ),
    ] = None,
    eval_path: Annotated[
        str | None,
        Field(
            description="A JSONL file of held-out examples to check the adapter on "
            "(default: eval_fraction of the dataset's prompts)."
        ),
    ] = None,
    eval_records: Annotated[
        list[dict[str, Any]] | None,
        Field(description="Held-out examples inline instead of eval_path."),
    ] = None,
) -> StartedJob:
    """Fine-tune the local model with QLoRA on the user's examples; returns a job id at once while it trains in the background."""
    training = app_of(ctx).require_training()
    job = await anyio.to_thread.run_sync(
        lambda: training.start_job(
            adapter_name,
            dataset_path,
            records=records,
            base_model=base_model,
            hyperparameters=hyperparameters,
            eval_path=eval_path,
            eval_records=eval_records,
        )
    )
    spec = training.spec(job.id)
    return StartedJob(
        job_id=job.id,
        status=job.status,
        examples=job.examples,
        dataset_sha256=job.dataset_sha256,
        base_model=job.base_model,
        hyperparameters=job.hyperparameters,
        auto=auto_names(spec.given or ()),
        eval_examples=spec.eval_examples,
        planned_steps=spec.estimate.steps if spec.estimate else 0,
        estimated_minutes=spec.estimate.minutes if spec.estimate else None,
        estimate=spec.estimate.basis if spec.estimate else "",
        runs_here=training.runs_here,
    )


@user_errors
async def get_job(
    ctx: Context,
    job_id: Annotated[str, Field(description="The id start_qlora_job returned.")],
    include_plot: Annotated[
        bool, Field(description="Also return the loss curve as a PNG image.")
    ] = False,
    wait_s: Annotated[
        float,
        Field(
            ge=0,
            le=60,
            description="Wait up to this many seconds for the job to end before answering.",
        ),
    ] = 0.0,
) -> Annotated[CallToolResult, JobInfo]:
    """A training job's status and progress: step/total, loss, tokens/s, eta, latest events, and its adapter once done."""
    training = app_of(ctx).require_training()
    if wait_s:
        await _wait_for_end(ctx, training, job_id, wait_s)
    view = await anyio.to_thread.run_sync(lambda: training.view(job_id))
    info = JobInfo.of(view)
    structured = info.model_dump(mode="json")
    content: list[ContentBlock] = [TextContent(type="text", text=json.dumps(structured))]
    if include_plot:
        if view.loss_plot is None:
            content.append(
                TextContent(type="text", text="no loss plot yet (written when the job ends)")
            )
        else:
            data = base64.b64encode(view.loss_plot.read_bytes()).decode()
            content.append(ImageContent(type="image", data=data, mime_type="image/png"))
    return CallToolResult(content=content, structured_content=structured)


async def _wait_for_end(
    ctx: Context, training: TrainingService, job_id: str, wait_s: float
) -> None:
    """Wait for the job to end, sending its steps as progress notifications meanwhile."""

    def report(view: JobView) -> None:
        loss = f", loss {view.loss:.3f}" if view.loss is not None else ""
        message = f"{view.job.status}: step {view.step}{loss}"
        anyio.from_thread.run(ctx.report_progress, view.step, view.total or None, message)

    def sleep(seconds: float) -> None:
        # On the event loop, so a cancelled call stops the follow at once, not at its deadline.
        anyio.from_thread.run(anyio.sleep, seconds)

    await anyio.to_thread.run_sync(
        lambda: training.follow(job_id, wait_s, report, poll_s=1.0, sleep=sleep)
    )


@user_errors
async def list_jobs(
    ctx: Context,
    status: Annotated[
        str | None, Field(description="Only jobs with this status (e.g. running).")
    ] = None,
    limit: Annotated[int, Field(ge=1, le=500)] = 20,
) -> JobList:
    """Training jobs, newest first, with their status and progress."""
    training = app_of(ctx).require_training()

    views = await anyio.to_thread.run_sync(lambda: training.jobs(status, limit))
    return JobList(jobs=[JobInfo.of(view, events=False) for view in views])


@user_errors
async def cancel_job(
    ctx: Context, job_id: Annotated[str, Field(description="The job to stop.")]
) -> JobInfo:
    """Cancel a training job: a queued or interrupted one at once, a running one cleanly at its next step."""
    return await _change(ctx, job_id, "cancel")


@user_errors
async def resume_job(
    ctx: Context, job_id: Annotated[str, Field(description="An interrupted job.")]
) -> JobInfo:
    """Queue an interrupted training job again; it continues from its last checkpoint."""
    return await _change(ctx, job_id, "resume")


async def _change(ctx: Context, job_id: str, action: Literal["cancel", "resume"]) -> JobInfo:
    training = app_of(ctx).require_training()

    def work() -> JobView:
        (training.cancel if action == "cancel" else training.resume)(job_id)
        return training.view(job_id)

    return JobInfo.of(await anyio.to_thread.run_sync(work))


def register(server: MCPServer, read_only: bool) -> None:
    server.add_tool(get_job, annotations=tool_hints("Training job status", read_only=True))
    server.add_tool(list_jobs, annotations=tool_hints("Training jobs", read_only=True))
    if not read_only:
        server.add_tool(
            start_qlora_job, annotations=tool_hints("Start fine-tuning", read_only=False)
        )
        server.add_tool(cancel_job, annotations=tool_hints("Cancel training job", read_only=False))
        server.add_tool(resume_job, annotations=tool_hints("Resume training job", read_only=False))

    @server.resource(
        "job://{job_id}",
        name="job",
        description="A training job's events (events.jsonl), one JSON object per line.",
        mime_type="application/x-ndjson",
    )
    def job_events(job_id: str, ctx: Context) -> str:
        return app_of(ctx).require_training().events(job_id)
