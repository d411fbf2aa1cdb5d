"""buzon: the help-desk daemon for OECE's consultas@ and sugerencias@ mailboxes."""
