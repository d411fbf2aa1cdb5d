"""Everything main builds once and hands down: settings, secrets, engine, templates."""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass

import jinja2
from sqlalchemy.engine import Engine

from daemon.calendar import WorkCalendar
from daemon.compose import build_environment
from daemon.config import Settings
from daemon.pipeline import Classifier, PipelineContext
from daemon.routing import CompiledRule, compile_rules


@dataclass
class Runtime:
    settings: Settings
    secrets: dict[str, str]
    engine: Engine
    templates: jinja2.Environment
    calendar: WorkCalendar
    rules: tuple[CompiledRule, ...]
    classifier: Classifier | None = None
    confidence_threshold: float = 0.0
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

    def pipeline_context(self, lookups) -> PipelineContext:
        return PipelineContext(
            settings=self.settings, calendar=self.calendar, rules=self.rules, lookups=lookups,
            classifier=self.classifier, confidence_threshold=self.confidence_threshold,
            own_addresses=self.own_addresses,
        )

    def crash_point(self, name: str) -> None:
        if self.crash_at == name:
            os.kill(os.getpid(), signal.SIGKILL)
