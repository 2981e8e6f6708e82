"""The faceedit desktop app (PySide6). It never imports torch: the worker talks to the engine."""
