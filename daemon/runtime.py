"""Everything main builds once and hands down: settings, secrets, engine, templates."""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from typing import TYPE_CHECKING

import jinja2
from sqlalchemy.engine import Engine

from daemon.config import Settings
from daemon.decide.calendar import WorkCalendar
from daemon.decide.pipeline import PipelineContext
from daemon.decide.routing import CompiledRule, compile_rules
from daemon.mail.compose import build_environment

if TYPE_CHECKING:
    from classifiers.runtime import ModelClassifier
    from daemon.flows.judging import Judge
    from daemon.flows.knowledge import Knowledge
    from daemon.service.training import FirstModel


@dataclass
class Runtime:
    settings: Settings
    secrets: dict[str, str]
    engine: Engine
    templates: jinja2.Environment
    calendar: WorkCalendar
    rules: tuple[CompiledRule, ...]
    classifier: ModelClassifier | None = None
    knowledge: Knowledge | None = None  # suggested answers (daemon.flows.knowledge)
    judge: Judge | None = None  # the judging process (daemon.flows.judging)
    first_model: FirstModel | None = None  # a first model in training (daemon.service)
    # Tests name a point here (BUZON_CRASH_AT) to be SIGKILLed at it, to prove recovery.
    crash_at: str = ""
    # Mails a failing stage sent to quarantine in this process (`run --once` exits 1).
    stage_failures: int = 0

    @classmethod
    def build(cls, settings: Settings, secrets: dict[str, str], engine: Engine,
              crash_at: str = "") -> Runtime:
        return cls(
            settings=settings,
            secrets=secrets,
            engine=engine,
            templates=build_environment(settings.templates_dir,
                                        organ_names=settings.organ_names(),
                                        automatic_relay=settings.second_level.relay
                                        == "automatic"),
            calendar=WorkCalendar.from_settings(settings.calendar, settings.zone),
            rules=compile_rules(settings.routing),
            crash_at=crash_at,
        )

    def password(self, variable: str | None) -> str | None:
        return self.secrets.get(variable) if variable else None

    @property
    def own_addresses(self) -> frozenset[str]:
        return frozenset(m.address for m in self.settings.mailboxes.values())

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
