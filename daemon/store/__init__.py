"""The database and what is planned in it: the tables (models), the engine and lookups
(db), an intake batch's rows, the outbox and its executor, planned mail (notify) and the
leases that let one process work a mailbox. May import runtime, decide, mail and config."""
