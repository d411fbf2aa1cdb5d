"""The optional parts main loads once into the runtime: the classifier (a first model
trained if allowed and there is none) and the index of answers for suggested drafts."""

from __future__ import annotations

from daemon.flows.alerts import part_failed
from daemon.runtime import Runtime


def load_classifier(rt: Runtime, train_if_missing: bool | None = None,
                    in_child: bool = False) -> None:
    """Load the model (training a first one if allowed and there is none, or the saved
    one is refused). With `in_child` (the daemon) that training is left to a child
    process started by start_first_model, so the daemon watches at once. A model that
    cannot be loaded is bypassed: consultas wait in the review folder."""
    if not rt.settings.classifier.enabled:
        return
    try:
        _load_classifier(rt, train_if_missing, in_child)
    except Exception as exc:  # noqa: BLE001 - an optional part never stops the intake
        rt.classifier = None
        part_failed(rt, "classifier", exc)


def _load_classifier(rt: Runtime, train_if_missing: bool | None, in_child: bool) -> None:
    settings = rt.settings.classifier
    # scikit-learn loads only to train: the daemon predicts with the model's arrays.
    from classifiers.compact import usable
    from classifiers.runtime import ModelClassifier

    wanted = settings.train_if_missing if train_if_missing is None else train_if_missing
    to_train = wanted and not usable(settings.model_dir)
    if to_train and not in_child:
        from classifiers.learning import ensure_model
        from daemon.flows.harvest import mailbox_examples

        ensure_model(settings.model_dir, lambda: mailbox_examples(rt.engine),
                     rt.settings.folders.categories)
    # Not ready when there is no usable model yet: it takes up the model promoted there.
    rt.classifier = ModelClassifier(settings.model_dir, settings.off_topic_threshold)
    if to_train and in_child:
        from daemon.service.training import FirstModel

        # (Also for a model without its arrays, used meanwhile: the child adds them.)
        rt.first_model = FirstModel(rt)
        return
    if rt.classifier.ready:
        return
    # Refused or unreadable (logged by the classifier): kept, it takes up the next model
    # promoted there by itself; until then consultas wait for review.
    part_failed(rt, "classifier", RuntimeError(f"no usable model in {settings.model_dir}"))


def start_first_model(rt: Runtime) -> None:
    """Start training the first model load_classifier left to a child process; after
    start_judge (the thread that waits for the child must not be forked)."""
    if rt.first_model is not None:
        rt.first_model.start()


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
