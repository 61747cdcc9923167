"""The web app: chat/webhook intake, and later the triage board and REST API."""
