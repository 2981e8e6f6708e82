"""The app's state, without Qt: what the window shows, saves and asks is derived from it
(docs/architecture.md §3, App state)."""
