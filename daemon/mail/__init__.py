"""The protocols and mail formats: IMAP, SMTP, parsing raw mail, composing mail from the
templates, recognising automatic mail, and the throwaway local mail server. May import
config, and the text functions of classifiers."""
