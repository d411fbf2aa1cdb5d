"""Routing rules from rules.yaml: sender, subject and body patterns choose a folder (pure)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from daemon.config import RoutingRule
from daemon.mail.parsing import Inbound


@dataclass(frozen=True)
class CompiledRule:
    name: str
    folder: str
    sender: tuple[re.Pattern, ...]
    subject: tuple[re.Pattern, ...]
    body: tuple[re.Pattern, ...]

    def matches(self, inbound: Inbound) -> bool:
        checks = (
            (self.sender, inbound.from_address),
            (self.subject, inbound.subject),
            (self.body, inbound.text),
        )
        # A rule matches when every kind of pattern it lists matches (any pattern within a kind).
        listed = [(patterns, text) for patterns, text in checks if patterns]
        return bool(listed) and all(any(p.search(text) for p in pats) for pats, text in listed)


def compile_rules(rules: list[RoutingRule]) -> tuple[CompiledRule, ...]:
    def compiled(patterns: list[str]) -> tuple[re.Pattern, ...]:
        return tuple(re.compile(p, re.IGNORECASE) for p in patterns)

    return tuple(
        CompiledRule(
            r.name, r.folder, compiled(r.from_patterns), compiled(r.subject_patterns),
            compiled(r.body_patterns),
        )
        for r in rules
    )


def route(inbound: Inbound, rules: tuple[CompiledRule, ...]) -> CompiledRule | None:
    """The first rule that matches, in the order rules.yaml lists them."""
    for rule in rules:
        if rule.matches(inbound):
            return rule
    return None
