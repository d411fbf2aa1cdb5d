"""The pure decisions: the pipeline of stages, the working calendar and the routing
rules. No I/O here. May import mail (its pure parsing) and config."""
