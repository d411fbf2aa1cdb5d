"""The optional parts main loads once into the runtime: the classifier (a first model
trained if allowed and there is none) and the index of answers for suggested drafts."""

from __future__ import annotations

from daemon.flows.alerts import part_failed
from daemon.runtime import Runtime


def load_classifier(rt: Runtime, train_if_missing: bool | None = None) -> None:
    """Load the model (training a first one if allowed and there is none). A model that
    cannot be loaded is bypassed: consultas wait in the review folder."""
    if not rt.settings.classifier.enabled:
        return
    try:
        _load_classifier(rt, train_if_missing)
    except Exception as exc:  # noqa: BLE001 - an optional part never stops the intake
        rt.classifier = None
        part_failed(rt, "classifier", exc)


def _load_classifier(rt: Runtime, train_if_missing: bool | None) -> None:
    settings = rt.settings.classifier
    # scikit-learn loads only to train: the daemon predicts with the model's arrays.
    from classifiers.compact import usable
    from classifiers.runtime import ModelClassifier

    wanted = settings.train_if_missing if train_if_missing is None else train_if_missing
    if wanted and not usable(settings.model_dir):
        from classifiers.learning import ensure_model
        from daemon.flows.harvest import mailbox_examples

        ensure_model(settings.model_dir, lambda: mailbox_examples(rt.engine),
                     rt.settings.folders.categories)
    rt.classifier = ModelClassifier(settings.model_dir)
    if not rt.classifier.ready:
        # Refused or unreadable (logged by the classifier): kept, it takes up the next
        # model promoted there by itself; until then consultas wait for review.
        part_failed(rt, "classifier", RuntimeError(f"no usable model in {settings.model_dir}"))


def load_knowledge(rt: Runtime) -> None:
    """The index of standard and past answers, for the suggested drafts (bypassed when it
    cannot be built: no drafts until it can)."""
    if rt.settings.answers.enabled:
        from daemon.flows.knowledge import Knowledge

        try:
            rt.knowledge = Knowledge(rt.settings, rt.engine)
        except Exception as exc:  # noqa: BLE001 - an optional part never stops the intake
            rt.knowledge = None
            part_failed(rt, "knowledge", exc)


def start_judge(rt: Runtime) -> None:
    """The judging process (daemon.flows.judging), forked now that the model and the
    index are loaded and before any thread starts. Without it mail is judged inline."""
    if not rt.settings.watcher.judge_process:
        return
    from daemon.flows.judging import Judge

    try:
        rt.judge = Judge(rt)
    except OSError as exc:  # no process to spare: judged inline, as before
        rt.judge = None
        part_failed(rt, "judge", exc)
