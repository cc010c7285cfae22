"""``TrainingService``: what the tools and the CLI call to train, follow and serve adapters.

It validates a request (name, hyperparameters, base model, dataset and where the dataset
lives) before anything is queued and writes it to the job's folder; its runner trains the
job and registers its adapter (:mod:`~llm_engineering.adapters.job_runner`); it resolves
``NAME[@VERSION]`` for answers (:mod:`~llm_engineering.adapters.serving`). Its callers
(tools, CLI, dashboard) see jobs and adapters through its methods only, never a job folder,
the job store or the registry.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llm_engineering.adapters.datasets import (
    DatasetLimits,
    ValidatedDataset,
    load_jsonl,
    system_prompt_of,
    validate_records,
)
from llm_engineering.adapters.estimate import (
    JOBS_SEARCHED,
    Run,
    check_plan,
    estimate,
    measured_rate,
)
from llm_engineering.adapters.heldout import split_heldout
from llm_engineering.adapters.hyperparams import QLoRAConfig
from llm_engineering.adapters.job_control import JobControl
from llm_engineering.adapters.job_runner import JobRunner
from llm_engineering.adapters.jobs import Job, JobStore
from llm_engineering.adapters.records import DatasetSummary, JobSpec
from llm_engineering.adapters.registry import (
    AdapterCard,
    AdapterRegistry,
    RegistryScan,
    parse_spec,
    valid_name,
)
from llm_engineering.adapters.serving import AdapterResolver, availability
from llm_engineering.config import Settings
from llm_engineering.errors import PathError, UserError
from llm_engineering.generation.base import Availability, ServedAdapter
from llm_engineering.paths import confine

if TYPE_CHECKING:
    from llm_engineering.adapters.launch import Launch
    from llm_engineering.generation.models import GeneratorCache

__all__ = ["TrainingService"]

log = logging.getLogger(__name__)


class TrainingService(JobControl):
    """Fine-tuning for the tools, the CLI and the benchmarks: jobs in, adapters out.

    Starting a job validates everything first and queues it (:meth:`start_job` returns at
    once); :meth:`start_runner` makes this process train queued jobs whenever it holds
    ``jobs.lock`` (otherwise another server or ``llm-eng train`` does). :meth:`view`,
    :meth:`jobs`, :meth:`job`, :meth:`job_rows`, :meth:`events`, :meth:`tail_events` and
    :meth:`follow` report progress; :meth:`cancel` and
    :meth:`resume` change a job (those from
    :class:`~llm_engineering.adapters.job_control.JobControl`); :meth:`adapters`,
    :meth:`adapter`, :meth:`resolve_adapter`, :meth:`where_served`, :meth:`launch` and
    :meth:`delete_adapter` serve the registry. Call :meth:`close` when done: it stops the
    runner (its workers checkpoint and their jobs are queued to resume) and closes the job
    store.

    Args:
        settings: Where the data folder is, which model to train and serve, which folders a
            dataset may come from, and how many jobs run at once.
    """

    def __init__(self, settings: Settings):
        self.settings = settings
        self.store = JobStore(settings.data_dir)
        self.registry = AdapterRegistry(settings.data_dir / "adapters")
        self.resolver = AdapterResolver(settings, self.registry)
        self.runner: JobRunner | None = None
        self._layers: dict[str, list[str]] = {}
        """Each base's layer names, read once (a few seconds for a GGUF)."""

    # -- running jobs ------------------------------------------------------------------

    def start_runner(self) -> JobRunner:
        """Run queued jobs in this process whenever it holds ``jobs.lock``."""
        self.runner = JobRunner(
            self.store,
            self.registry,
            max_concurrent=self.settings.jobs_max_concurrent,
            max_resumes=self.settings.job_max_resumes,
            threads=self.settings.train_threads,
            nice=self.settings.train_nice,
        )
        self.runner.start()
        return self.runner

    def close(self) -> None:
        """Stop running jobs here (see :meth:`stop_runner`) and close the job store."""
        self.stop_runner()
        self.store.close()

    # -- retrieval tuning (jobs of kind ``retrieval``) ------------------------------------

    def queue_tuning(self, index: Any, **request: Any) -> Job:
        """Check and queue a retrieval tuning job (see :func:`.retrieval_jobs.queue_tuning`)."""
        from llm_engineering.adapters.retrieval_jobs import queue_tuning

        return queue_tuning(self.store, index, **request)

    def tuning_runner(self, index: Any, ready: Callable[[], bool] = lambda: True) -> Any:
        """What runs retrieval jobs in ``index``'s writing process (a ``RetrievalJobs``)."""
        from llm_engineering.adapters.retrieval_jobs import RetrievalJobs

        return RetrievalJobs(index, self.store, ready)

    # -- starting ----------------------------------------------------------------------

    def allowed_roots(self) -> list[Path]:
        return list(self.settings.train_roots) or [*self.settings.watch, self.settings.data_dir]

    def base_model(self, requested: str | None, check_roots: bool = False) -> str:
        """The base to train: ``requested``, else ``train_base_model``, else ``llm_model``,
        checked (:func:`~llm_engineering.adapters.base_model.resolve_base`).

        With ``check_roots`` (a request from an agent), a path other than the configured
        models must lie inside :meth:`allowed_roots` or a configured model's folder, and a
        hub id must be in the local Hugging Face cache.

        Raises:
            PathError, ConfigError, UserError: no such model, a path outside the allowed
                folders, or a hub id not in the local cache.
        """
        from llm_engineering.adapters.base_model import resolve_base

        configured = [m for m in (self.settings.train_base_model, self.settings.llm_model) if m]
        return resolve_base(requested, configured, self.allowed_roots() if check_roots else None)

    def start_job(
        self,
        name: str,
        dataset_path: str | None = None,
        *,
        records: Sequence[object] | None = None,
        base_model: str | None = None,
        hyperparameters: dict[str, Any] | None = None,
        eval_path: str | None = None,
        eval_records: Sequence[object] | None = None,
        check_roots: bool = True,
    ) -> Job:
        """Validate everything, then queue the job; returns at once.

        ``check_roots=False`` (the CLI, whose user names the file) reads ``dataset_path``
        wherever it is; requests from an agent keep it inside :meth:`allowed_roots`.

        The adapter is checked on held-out examples: ``eval_path`` / ``eval_records`` when
        given, else ``eval_fraction`` of the dataset's prompts (see
        :func:`~llm_engineering.adapters.heldout.split_heldout`).

        Raises:
            UserError: a bad name, hyperparameter, base model, path or dataset (every bad
                line listed); nothing is recorded then.
        """
        valid_name(name)
        if (dataset_path is None) == (records is None):
            raise UserError("give exactly one of dataset_path (a JSONL file) or records (a list)")
        config = QLoRAConfig.from_dict(hyperparameters)
        base = self.base_model(base_model, check_roots)
        self._check_targets(config, base)
        limits = DatasetLimits.of(self.settings)
        path = None
        if dataset_path is not None:
            path = self._dataset_file(dataset_path, "dataset_path", check_roots)
        if eval_path is not None and eval_records is not None:
            raise UserError("give at most one of eval_path or eval_records")
        held_path = self._dataset_file(eval_path, "eval_path", check_roots) if eval_path else None
        dataset: ValidatedDataset = (
            load_jsonl(path, limits=limits)
            if path is not None
            else validate_records(enumerate(records or [], start=1), "records", limits=limits)
        )
        if held_path is not None:
            held = load_jsonl(held_path, min_examples=1, limits=limits).examples
        elif eval_records is not None:
            held = validate_records(enumerate(eval_records, 1), "eval_records", 1, limits).examples
        else:
            held = None
        if held is None:
            train, held = split_heldout(dataset.examples, config.eval_fraction, config.seed)
        else:
            train = dataset.examples
        given = tuple(sorted(hyperparameters or {}))
        planned = estimate(config, given, train, measured_rate(self._runs_on(base)))
        check_plan(config, planned)
        # Only now, with everything checked, does the job exist: a refused request leaves no row.
        job, folder = self.store.create(name, base, config.to_dict())
        spec = JobSpec(
            id=job.id,
            name=name,
            base_model=base,
            base_cache=str(self.settings.base_cache_dir or self.settings.data_dir / "base_models"),
            hyperparameters=config,
            dataset=DatasetSummary(
                source=dataset.source,
                sha256=dataset.sha256,
                examples=dataset.count,
                formats=dataset.formats,
            ),
            given=given,
            eval_examples=len(held),
            system_prompt=system_prompt_of(train),
            estimate=planned,
        )
        folder.write_request(spec, train, held)
        self.store.update(
            job.id, status="queued", dataset_sha256=dataset.sha256, examples=dataset.count
        )
        # Read before waking the runner: the caller gets the job as accepted (queued), not
        # whatever state the runner's thread may already have moved it to.
        accepted = self.store.get(job.id)
        if self.runner is not None:
            self.runner.wake()
        return accepted

    def _runs_on(self, base: str) -> Iterator[Run]:
        """The newest jobs on ``base`` with their events, newest first (read as needed)."""
        for job in self.store.jobs(limit=JOBS_SEARCHED):
            if job.base_model == base:
                yield job.id, self.store.folder(job.id).events()

    def _check_targets(self, config: QLoRAConfig, base: str) -> None:
        """Every ``target_modules`` entry must name layers of ``base`` (peft would train a
        list with one name that matches and ignore the others).

        Raises:
            UserError: names that match no layer, with the layers there are.
        """
        from llm_engineering.adapters.base_model import layer_names, unmatched_targets

        if config.target_modules == "all-linear":
            return
        if base not in self._layers:
            self._layers[base] = layer_names(base)
        layers = self._layers[base]
        missing = unmatched_targets(config.target_modules, layers)
        if missing:
            kinds = ", ".join(sorted({name.rsplit(".", 1)[-1] for name in layers}))
            raise UserError(
                f"target_modules {', '.join(map(repr, missing))} match no layer of {base}; "
                f"its layers LoRA can wrap are {kinds} (give names, endings like "
                "self_attn.q_proj, a regular expression over whole names, or 'all-linear')"
            )

    def _dataset_file(self, given: str, what: str, check_roots: bool) -> Path:
        if check_roots:
            return confine(given, self.allowed_roots(), what=what, kind="file")
        path = Path(given).expanduser().resolve()
        if not path.is_file():
            raise PathError(f"{what} {given} does not exist or is not a file")
        return path

    # -- adapters ----------------------------------------------------------------------

    def resolve_adapter(self, spec: str) -> ServedAdapter:
        """``NAME[@VERSION]`` -> the adapter to answer with (see :class:`AdapterResolver`).

        Raises:
            UserError: unknown adapter or version, or one the in-process model cannot serve.
        """
        return self.resolver.resolve(spec)

    def adapters(self, name: str | None = None) -> list[AdapterCard]:
        """Every registered adapter version (only those named ``name`` when given) whose card
        reads; :meth:`adapter_listing` also gives those whose card does not."""
        return self.registry.scan(name).cards

    def adapter_listing(self, name: str | None = None) -> RegistryScan:
        """The adapter versions (of ``name`` when given), and apart those whose card is damaged."""
        return self.registry.scan(name)

    def where_served(
        self, generators: GeneratorCache, cards: Sequence[AdapterCard] | None = None
    ) -> list[Availability]:
        """Where each of ``cards`` (default: every version whose card reads) can answer now
        through ``generators``, or why not, in order. In process this loads no model; with
        ``llm_url`` it asks the server."""
        return availability(self.resolver, generators, self.adapters() if cards is None else cards)

    def launch(self, kind: str) -> Launch:
        """What to start a ``kind`` model server (vllm, llama-server, llama-cpp-python) with
        to serve the registered adapters; damaged versions are noted as left out.

        Raises:
            UserError: an unknown kind, or no base model to serve.
        """
        from llm_engineering.adapters.launch import launch

        listing = self.registry.scan()
        result = launch(kind, self.settings, self.resolver, listing.cards)
        result.notes += [f"left out: {found.describe()}" for found in listing.damaged]
        return result

    def adapter(self, spec: str) -> AdapterCard:
        """The card of ``NAME`` (its latest version) or ``NAME@VERSION``.

        Raises:
            UserError: no such adapter or version.
        """
        return self.registry.get(spec)

    def delete_adapter(self, spec: str, confirm: str) -> list[str]:
        return self.registry.delete(spec, confirm)

    def adapters_to_delete(self, spec: str) -> list[str]:
        """What :meth:`delete_adapter` would delete for ``spec`` (``NAME@VERSION`` each).

        Raises:
            UserError: no such adapter or version.
        """
        name, _ = parse_spec(spec)
        return [f"{name}@{n}" for n in self.registry.deletable(spec)]
