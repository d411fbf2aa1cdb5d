"""Everything main builds once and hands down: settings, secrets, engine, templates."""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from typing import TYPE_CHECKING

import jinja2
from sqlalchemy.engine import Engine

from daemon.calendar import WorkCalendar
from daemon.compose import build_environment
from daemon.config import Settings
from daemon.pipeline import PipelineContext
from daemon.routing import CompiledRule, compile_rules

if TYPE_CHECKING:
    from classifiers.runtime import ModelClassifier
    from daemon.knowledge import Knowledge


@dataclass
class Runtime:
    settings: Settings
    secrets: dict[str, str]
    engine: Engine
    templates: jinja2.Environment
    calendar: WorkCalendar
    rules: tuple[CompiledRule, ...]
    classifier: ModelClassifier | None = None
    knowledge: Knowledge | None = None  # suggested answers (daemon.knowledge)
    # Tests name a point here (BUZON_CRASH_AT) to be SIGKILLed at it, to prove recovery.
    crash_at: str = ""

    @classmethod
    def build(cls, settings: Settings, secrets: dict[str, str], engine: Engine,
              crash_at: str = "") -> Runtime:
        return cls(
            settings=settings,
            secrets=secrets,
            engine=engine,
            templates=build_environment(settings.templates_dir),
            calendar=WorkCalendar.from_settings(settings.calendar, settings.zone),
            rules=compile_rules(settings.routing),
            crash_at=crash_at,
        )

    def password(self, variable: str | None) -> str | None:
        return self.secrets.get(variable) if variable else None

    @property
    def own_addresses(self) -> frozenset[str]:
        return frozenset(m.address for m in self.settings.mailboxes.values())

    def load_classifier(self, train_if_missing: bool | None = None) -> None:
        """Load the model (training a first one if allowed and there is none)."""
        settings = self.settings.classifier
        if not settings.enabled:
            return
        # scikit-learn loads only to train: the daemon predicts with the model's arrays.
        from classifiers.compact import usable
        from classifiers.runtime import ModelClassifier

        wanted = settings.train_if_missing if train_if_missing is None else train_if_missing
        if wanted and not usable(settings.model_dir):
            from classifiers.learning import ensure_model

            ensure_model(settings.model_dir, self.engine, self.settings.folders.categories)
        self.classifier = ModelClassifier(settings.model_dir)

    def load_knowledge(self) -> None:
        """The index of standard and past answers, for the suggested drafts."""
        if self.settings.answers.enabled:
            from daemon.knowledge import Knowledge

            self.knowledge = Knowledge(self.settings, self.engine)

    @property
    def confidence_threshold(self) -> float:
        configured = self.settings.classifier.confidence_threshold
        if configured is not None or self.classifier is None:
            return configured or 0.0
        return self.classifier.threshold

    def pipeline_context(self, lookups) -> PipelineContext:
        model = self.classifier if self.classifier is not None and self.classifier.ready else None
        if model is not None:
            model.reload_if_changed()  # a promoted model is used from the next batch on
        return PipelineContext(
            settings=self.settings, calendar=self.calendar, rules=self.rules, lookups=lookups,
            classifier=model, confidence_threshold=self.confidence_threshold,
            own_addresses=self.own_addresses,
            organ_addresses=frozenset(o.address.lower() for o in self.settings.organs.values()),
        )

    def crash_point(self, name: str) -> None:
        if self.crash_at == name:
            os.kill(os.getpid(), signal.SIGKILL)
