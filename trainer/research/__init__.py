"""Research diagnostics, apart from the maintained trainer: see README.md beside this file."""
