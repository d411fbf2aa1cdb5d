"""Running buzon: one pass over every mailbox (--once) or a watcher per mailbox, the
periodic work, and the optional parts loaded at start. May import reports, flows,
store, runtime, decide, mail and config."""
