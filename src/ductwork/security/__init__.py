"""Who may do what: accounts, API keys, sessions, credentials, redaction and the audit log."""
