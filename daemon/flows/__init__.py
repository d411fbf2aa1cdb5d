"""What happens to a ticket, one module per workflow: intake, answers, second level,
incidents, legal review, surveys, the assistants' moves, the sweeps, suggested answers
(knowledge), harvesting labelled mail and alerts about buzon itself. May import store,
runtime, decide, mail and config."""
