"""The optional parts main loads once into the runtime: the classifier (a first model
trained if allowed and there is none) and the index of answers for suggested drafts."""

from __future__ import annotations

from daemon.runtime import Runtime


def load_classifier(rt: Runtime, train_if_missing: bool | None = None) -> None:
    """Load the model (training a first one if allowed and there is none)."""
    settings = rt.settings.classifier
    if not settings.enabled:
        return
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


def load_knowledge(rt: Runtime) -> None:
    """The index of standard and past answers, for the suggested drafts."""
    if rt.settings.answers.enabled:
        from daemon.flows.knowledge import Knowledge

        rt.knowledge = Knowledge(rt.settings, rt.engine)
